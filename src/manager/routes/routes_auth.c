/* Authentication routes: login/logout, and the hook that guards
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

#include "common/http_guard.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/validate.h"
#include "manager/auth/sessions.h"
#include "manager/manager.h"
#include "manager/routes/routes.h"

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

/* 200 with the token (also as the session cookie) and the CSRF token. */
static void
reply_session(struct manager *m, struct http_response *resp, const char *username,
	const char *user_id, time_t t)
{
	char token[AUTH_TOKEN_LEN + 1], csrf[AUTH_TOKEN_LEN + 1];
	struct session_info si;

	if (sessions_create(m, user_id, t, token, csrf) < 0 ||
		sessions_lookup(m, token, &si) < 0) {
		explicit_bzero(token, sizeof token);
		explicit_bzero(csrf, sizeof csrf);
		http_reply_errorf(resp, "internal_error", NULL, "database error");
		return;
	}
	http_reply_json(resp, 200,
		json_pack("{s:s, s:s, s:I, s:s, s:s}", "token", token, "csrf_token", csrf,
			"expires_at", (json_int_t)(t + m->cfg.token_ttl), "username",
			username, "role", si.role));
	if (asprintf(&resp->extra_headers,
		    "Set-Cookie: " AUTH_COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict;"
		    " Max-Age=%u\n",
		    token, m->cfg.token_ttl) < 0)
		resp->extra_headers = NULL;
	explicit_bzero(token, sizeof token);
	explicit_bzero(csrf, sizeof csrf);
}

/* username and password checked against the throttle, then the users. */
static int
authenticate(struct http_request *req, struct http_response *resp, const char *username,
	const char *pw, time_t t, char user_id[AUTH_UUID_LEN + 1])
{
	struct manager *m = req->userdata;
	char addr[INET6_ADDRSTRLEN + 8], ukey[RATELIMIT_KEY_MAX], akey[RATELIMIT_KEY_MAX];
	time_t wait;
	int r;

	client_addr(req, addr, sizeof addr);
	/* The user key includes the address: failures from one address must
	 * not lock the account for the others. */
	snprintf(ukey, sizeof ukey, "u:%s@%s", addr, username);
	snprintf(akey, sizeof akey, "a:%s", addr);
	wait = login_blocked(m, ukey, akey, t);
	if (wait > 0) {
		http_reply_errorf(resp, "too_many_requests", NULL,
			"too many failed logins; try again in %lld seconds",
			(long long)wait);
		asprintf(&resp->extra_headers, "Retry-After: %lld\n", (long long)wait);
		return -EAGAIN;
	}
	r = sessions_check_password(m, username, pw, user_id);
	if (r < 0) {
		login_failed(m, ukey, akey, t);
		log_info("login failed client=%s", addr);
		if (r == -EACCES)
			http_reply_errorf(resp, "unauthorized", NULL,
				"invalid username or password");
		else
			http_reply_errorf(resp, "internal_error", NULL, "database error");
		return r;
	}
	login_succeeded(m, ukey);
	log_info("login ok username=%s client=%s", username, addr);
	return 0;
}

static void
login(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "username", "password", NULL };
	struct nq_error err = { 0 };
	const char *username = NULL, *pw = NULL;
	char user_id[AUTH_UUID_LEN + 1];
	json_t *body = NULL;
	time_t t = time(NULL);

	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "username", &username, &err) < 0 ||
		json_req_string(body, "password", &pw, &err) < 0) {
		http_reply_error(resp, &err);
	} else if (strlen(username) > NQ_USER_MAX || strlen(pw) > AUTH_PASSWORD_MAX) {
		http_reply_errorf(resp, "unauthorized", NULL,
			"invalid username or password");
	} else if (authenticate(req, resp, username, pw, t, user_id) >= 0) {
		reply_session(req->userdata, resp, username, user_id, t);
	}
	json_decref(body);
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
	char token[AUTH_TOKEN_LEN + 1];
	bool cookie;

	if (presented_token(req, token, sizeof token, &cookie) == 0)
		sessions_delete(req->userdata, token);
	http_reply_empty(resp, 204);
	if (asprintf(&resp->extra_headers,
		    "Set-Cookie: " AUTH_COOKIE_NAME
		    "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0\n") < 0)
		resp->extra_headers = NULL;
}

/* Cookie-authenticated writes must carry this session's CSRF token. */
static int
check_csrf(struct http_request *req, struct http_response *resp, const char *digest)
{
	const char *csrf = http_header(req, "X-CSRF-Token");
	char chash[AUTH_DIGEST_LEN + 1];

	if (!csrf || strlen(csrf) != AUTH_TOKEN_LEN) {
		http_reply_errorf(resp, "csrf_required", NULL,
			"cookie-authenticated writes need the X-CSRF-Token header");
		return -1;
	}
	auth_digest(csrf, chash);
	if (!auth_digest_equal(chash, digest)) {
		http_reply_errorf(resp, "csrf_required", NULL,
			"the X-CSRF-Token header does not match this session");
		return -1;
	}
	return 0;
}

static bool
is_read(const struct http_request *req)
{
	return strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
}

/* The one place roles are enforced: a viewer may read (GET/HEAD) every
 * route but ROUTE_ADMIN ones, and write nothing but logout (login needs
 * no session). 0 when allowed. */
static int
check_role(struct http_request *req, struct http_response *resp)
{
	if (strcmp(req->auth_role, "admin") == 0)
		return 0;
	if (req->route_flags & ROUTE_ADMIN) {
		http_reply_errorf(resp, "forbidden", NULL,
			"only an administrator may use this endpoint");
		return -1;
	}
	if (!is_read(req) && strcmp(req->path, "/v1/auth/logout") != 0) {
		http_reply_errorf(resp, "forbidden", NULL,
			"user %s has the viewer role: it may look but not change anything",
			req->auth_user);
		return -1;
	}
	return 0;
}

int
mgr_auth_hook(struct http_request *req, struct http_response *resp)
{
	char token[AUTH_TOKEN_LEN + 1];
	struct session_info si;
	bool cookie;
	int r;

	if (presented_token(req, token, sizeof token, &cookie) < 0 ||
		strlen(token) != AUTH_TOKEN_LEN) {
		http_reply_errorf(resp, "unauthorized", NULL,
			"authentication required: log in and send the bearer token");
		return -1;
	}
	r = sessions_lookup(req->userdata, token, &si);
	explicit_bzero(token, sizeof token);
	if (r < 0 && r != -ENOENT) {
		http_reply_errorf(resp, "internal_error", NULL, "database error");
		return -1;
	}
	if (r == -ENOENT) {
		http_reply_errorf(resp, "unauthorized", NULL,
			"the token is invalid or has expired: log in again");
		return -1;
	}
	if (cookie && !is_read(req) && check_csrf(req, resp, si.csrf_digest) < 0)
		return -1;
	snprintf(req->auth_user, sizeof req->auth_user, "%s", si.username);
	snprintf(req->auth_role, sizeof req->auth_role, "%s", si.role);
	return check_role(req, resp);
}

/* GET /v1/auth/whoami: the session's user and role (the UI hides what a
 * viewer may not do). */
static void
whoami(struct http_request *req, struct http_response *resp)
{
	http_reply_json(resp, 200,
		json_pack("{s:s, s:s}", "username", req->auth_user, "role", req->auth_role));
}

const struct http_route auth_routes[] = {
	{ "POST", "/v1/auth/login", login, ROUTE_NO_AUTH | ROUTE_SENSITIVE, 8192, NULL },
	{ "POST", "/v1/auth/logout", logout, 0, 0, NULL },
	{ "GET", "/v1/auth/whoami", whoami, 0, 0, NULL },
};
const size_t auth_routes_count = sizeof auth_routes / sizeof auth_routes[0];
