/* Authentication: first admin, login/logout, and the hook that guards
 * every /v1 route. Tokens are random 256-bit values; only their SHA-256 is
 * stored. The UI gets the same token as an HttpOnly SameSite=Strict cookie,
 * and cookie-authenticated writes must carry X-CSRF-Token (returned at
 * login, also stored hashed). Failed logins are rate-limited per username
 * together with the client address (a flood from one address never locks
 * the account for another) and per client address. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "manager/auth/auth.h"
#include "common/json_util.h"
#include "common/http_guard.h"
#include "common/log.h"
#include "manager/manager.h"
#include "common/validate.h"

#define ADMIN_USER "admin"
#define GENERATED_PW_LEN 20
#define PASSWORD_MAX 1024

int
auth_bootstrap(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	char hash[AUTH_HASH_MAX], id[AUTH_UUID_LEN + 1], now[24];
	char pw[PASSWORD_MAX + 1];
	char *env = getenv("NQRUST_ADMIN_PASSWORD");
	bool generated = false;
	int r;

	/* Copy the variable, then wipe it in place: that memory is what
	 * /proc/<pid>/environ shows. */
	if (env && *env) {
		if (strlen(env) > PASSWORD_MAX) {
			log_error("NQRUST_ADMIN_PASSWORD is longer than %d bytes", PASSWORD_MAX);
			return -EINVAL;
		}
		snprintf(pw, sizeof pw, "%s", env);
	} else {
		pw[0] = '\0';
	}
	if (env) {
		explicit_bzero(env, strlen(env));
		unsetenv("NQRUST_ADMIN_PASSWORD");
	}
	r = db_query(m->db, "SELECT COUNT(*) FROM users", 0, NULL, &rows);
	if (r < 0)
		goto out;
	if (strcmp(db_rows_get(&rows, 0, 0) ?: "0", "0") != 0)
		goto out; /* users exist: the variable is ignored */
	if (!pw[0]) {
		auth_new_password(pw, GENERATED_PW_LEN);
		generated = true;
	}
	r = auth_hash_password(pw, strlen(pw), hash);
	if (r < 0)
		goto out;
	auth_new_uuid(id);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	const char *p[] = { id, ADMIN_USER, hash, now };
	r = db_exec(m->db, "INSERT INTO users (id, username, password_hash, created_at)"
		" VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", 4, p, NULL);
	if (r < 0)
		goto out;
	if (generated) {
		/* Printed once, on stdout, not through the log. */
		printf("nqrust-manager: created user '%s' with generated password: %s\n",
			ADMIN_USER, pw);
		fflush(stdout);
	}
	log_info("created first user username=%s password_source=%s", ADMIN_USER,
		generated ? "generated" : "environment");
out:
	explicit_bzero(pw, sizeof pw);
	return r;
}

static void
client_addr(struct http_request *req, char *buf, size_t sz)
{
	const union MHD_ConnectionInfo *ci;

	snprintf(buf, sz, "unix");
	if (req->via_unix)
		return;
	ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr)
		http_addr_text(ci->client_addr, buf, sz);
}

/* 0 when the credentials are right; fills *user_id. */
static int
check_password(struct manager *m, const char *username, const char *pw,
	char user_id[AUTH_UUID_LEN + 1])
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { username };
	bool ok;
	int r;

	r = db_query(m->db, "SELECT id, password_hash FROM users WHERE username = $1",
		1, p, &rows);
	if (r < 0)
		return r;
	sem_wait(&m->hash_slots);
	/* Verify against a dummy hash for unknown users, so timing does not
	 * tell which usernames exist. */
	ok = auth_verify_password(rows.nrows ? db_rows_get(&rows, 0, 1) : m->dummy_hash, pw,
		strlen(pw));
	sem_post(&m->hash_slots);
	if (!ok || rows.nrows == 0)
		return -EACCES;
	snprintf(user_id, AUTH_UUID_LEN + 1, "%s", db_rows_get(&rows, 0, 0));
	return 0;
}

static void
login(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "username", "password", NULL };
	struct manager *m = req->userdata;
	struct nq_error err = { 0 };
	const char *username = NULL, *pw = NULL;
	char addr[INET6_ADDRSTRLEN + 8], ukey[RATELIMIT_KEY_MAX], akey[RATELIMIT_KEY_MAX];
	char token[AUTH_TOKEN_LEN + 1], csrf[AUTH_TOKEN_LEN + 1];
	char th[AUTH_DIGEST_LEN + 1], ch[AUTH_DIGEST_LEN + 1];
	char user_id[AUTH_UUID_LEN + 1], tid[AUTH_UUID_LEN + 1], now[24], exp[24];
	json_t *body = NULL;
	time_t wait, t = time(NULL);
	int r;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
	    json_req_string(body, "username", &username, &err) < 0 ||
	    json_req_string(body, "password", &pw, &err) < 0)
		goto fail;
	if (strlen(username) > NQ_USER_MAX || strlen(pw) > PASSWORD_MAX) {
		nq_error_set(&err, "unauthorized", NULL, "invalid username or password");
		goto fail;
	}
	client_addr(req, addr, sizeof addr);
	/* The user key includes the address: failures from one address must
	 * not lock the account for the others. */
	snprintf(ukey, sizeof ukey, "u:%s@%s", addr, username);
	snprintf(akey, sizeof akey, "a:%s", addr);
	pthread_mutex_lock(&m->rl_lock);
	wait = ratelimit_blocked(m->rl_user, ukey, t);
	if (wait == 0)
		wait = ratelimit_blocked(m->rl_addr, akey, t);
	pthread_mutex_unlock(&m->rl_lock);
	if (wait > 0) {
		nq_error_set(&err, "too_many_requests", NULL,
			"too many failed logins; try again in %lld seconds", (long long)wait);
		http_reply_error(resp, &err);
		asprintf(&resp->extra_headers, "Retry-After: %lld\n", (long long)wait);
		json_decref(body);
		return;
	}
	r = check_password(m, username, pw, user_id);
	if (r < 0) {
		pthread_mutex_lock(&m->rl_lock);
		ratelimit_fail(m->rl_user, ukey, t);
		ratelimit_fail(m->rl_addr, akey, t);
		pthread_mutex_unlock(&m->rl_lock);
		log_info("login failed client=%s", addr);
		if (r == -EACCES)
			nq_error_set(&err, "unauthorized", NULL, "invalid username or password");
		else
			nq_error_set(&err, "internal_error", NULL, "database error");
		goto fail;
	}
	pthread_mutex_lock(&m->rl_lock);
	ratelimit_reset(m->rl_user, ukey);
	pthread_mutex_unlock(&m->rl_lock);

	auth_new_token(token);
	auth_new_token(csrf);
	auth_digest(token, th);
	auth_digest(csrf, ch);
	auth_new_uuid(tid);
	snprintf(now, sizeof now, "%lld", (long long)t);
	snprintf(exp, sizeof exp, "%lld", (long long)t + m->cfg.token_ttl);
	const char *p[] = { tid, user_id, th, ch, now, exp };
	(void)db_exec(m->db, "DELETE FROM api_tokens WHERE expires_at < $1", 1,
		(const char *[]){ now }, NULL);
	r = db_exec(m->db, "INSERT INTO api_tokens (id, user_id, token_hash, csrf_hash,"
		" created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)", 6, p, NULL);
	if (r < 0) {
		nq_error_set(&err, "internal_error", NULL, "database error");
		goto fail;
	}
	log_info("login ok username=%s client=%s", username, addr);
	http_reply_json(resp, 200, json_pack("{s:s, s:s, s:I, s:s}", "token", token,
		"csrf_token", csrf, "expires_at", (json_int_t)(t + m->cfg.token_ttl),
		"username", username));
	if (asprintf(&resp->extra_headers,
		    "Set-Cookie: " AUTH_COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict;"
		    " Max-Age=%u\n", token, m->cfg.token_ttl) < 0)
		resp->extra_headers = NULL;
	explicit_bzero(token, sizeof token);
	explicit_bzero(csrf, sizeof csrf);
	json_decref(body);
	return;
fail:
	json_decref(body);
	http_reply_error(resp, &err);
}

/* The presented token (bearer first, then cookie) into buf. */
static int
presented_token(struct http_request *req, char *buf, size_t sz, bool *ret_cookie)
{
	const char *b = auth_bearer(http_header(req, "Authorization"));
	const char *cookie;

	*ret_cookie = false;
	if (b) {
		if (strlen(b) >= sz)
			return -ENOSPC;
		snprintf(buf, sz, "%s", b);
		return 0;
	}
	cookie = http_header(req, "Cookie");
	if (cookie && auth_cookie_value(cookie, AUTH_COOKIE_NAME, buf, sz) == 0) {
		*ret_cookie = true;
		return 0;
	}
	return -ENOENT;
}

static void
logout(struct http_request *req, struct http_response *resp)
{
	struct manager *m = req->userdata;
	char token[AUTH_TOKEN_LEN + 1], th[AUTH_DIGEST_LEN + 1];
	bool cookie;

	if (presented_token(req, token, sizeof token, &cookie) == 0) {
		auth_digest(token, th);
		(void)db_exec(m->db, "DELETE FROM api_tokens WHERE token_hash = $1", 1,
			(const char *[]){ th }, NULL);
	}
	http_reply_empty(resp, 204);
	if (asprintf(&resp->extra_headers, "Set-Cookie: " AUTH_COOKIE_NAME
		    "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\n") < 0)
		resp->extra_headers = NULL;
}

int
mgr_auth_hook(struct http_request *req, struct http_response *resp)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct manager *m = req->userdata;
	char token[AUTH_TOKEN_LEN + 1], th[AUTH_DIGEST_LEN + 1], now[24];
	bool cookie;

	if (presented_token(req, token, sizeof token, &cookie) < 0 ||
	    strlen(token) != AUTH_TOKEN_LEN) {
		http_reply_errorf(resp, "unauthorized", NULL,
			"authentication required: log in and send the bearer token");
		return -1;
	}
	auth_digest(token, th);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	if (db_query(m->db, "SELECT csrf_hash FROM api_tokens WHERE token_hash = $1"
		    " AND expires_at > $2", 2, (const char *[]){ th, now }, &rows) < 0) {
		http_reply_errorf(resp, "internal_error", NULL, "database error");
		return -1;
	}
	if (rows.nrows == 0) {
		http_reply_errorf(resp, "unauthorized", NULL,
			"the token is invalid or has expired: log in again");
		return -1;
	}
	if (cookie && strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		const char *csrf = http_header(req, "X-CSRF-Token");
		char chash[AUTH_DIGEST_LEN + 1];

		if (!csrf || strlen(csrf) != AUTH_TOKEN_LEN) {
			http_reply_errorf(resp, "csrf_required", NULL,
				"cookie-authenticated writes need the X-CSRF-Token header");
			return -1;
		}
		auth_digest(csrf, chash);
		if (!auth_digest_equal(chash, db_rows_get(&rows, 0, 0))) {
			http_reply_errorf(resp, "csrf_required", NULL,
				"the X-CSRF-Token header does not match this session");
			return -1;
		}
	}
	return 0;
}

const struct http_route auth_routes[] = {
	{ "POST", "/v1/auth/login", login, ROUTE_NO_AUTH | ROUTE_SENSITIVE, 8192, NULL },
	{ "POST", "/v1/auth/logout", logout, 0, 0, NULL },
};
const size_t auth_routes_count = sizeof auth_routes / sizeof auth_routes[0];
