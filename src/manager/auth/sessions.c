/* Users and sessions: the first admin, password checks, failed-login
 * throttling, API tokens (only their SHA-256 is stored). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "manager/auth/sessions.h"
#include "manager/manager.h"

#define ADMIN_USER "admin"
#define GENERATED_PW_LEN 20

int
auth_bootstrap(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	char hash[AUTH_HASH_MAX], id[AUTH_UUID_LEN + 1], now[24];
	char pw[AUTH_PASSWORD_MAX + 1];
	char *env = getenv("NQRUST_ADMIN_PASSWORD");
	bool generated = false;
	int r;

	/* Copy the variable, then wipe it in place: that memory is what
	 * /proc/<pid>/environ shows. */
	if (env && *env) {
		if (strlen(env) > AUTH_PASSWORD_MAX) {
			log_error("NQRUST_ADMIN_PASSWORD is longer than %d bytes",
				AUTH_PASSWORD_MAX);
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
	r = db_exec(m->db,
		"INSERT INTO users (id, username, password_hash, created_at, role,"
		" builtin) VALUES ($1, $2, $3, $4, 'admin', 1) ON CONFLICT DO NOTHING",
		4, p, NULL);
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

/* 0 when the credentials are right; fills *user_id. */
int
sessions_check_password(struct manager *m, const char *username, const char *pw,
	char user_id[AUTH_UUID_LEN + 1])
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { username };
	bool ok;
	int r;

	r = db_query(m->db, "SELECT id, password_hash FROM users WHERE username = $1", 1,
		p, &rows);
	if (r < 0)
		return r;
	sem_wait(&m->hash_slots);
	/* Verify against a dummy hash for unknown users, so timing does not
	 * tell which usernames exist. */
	ok = auth_verify_password(rows.nrows ? db_rows_get(&rows, 0, 1) : m->dummy_hash,
		pw, strlen(pw));
	sem_post(&m->hash_slots);
	if (!ok || rows.nrows == 0)
		return -EACCES;
	snprintf(user_id, AUTH_UUID_LEN + 1, "%s", db_rows_get(&rows, 0, 0));
	return 0;
}

time_t
login_blocked(struct manager *m, const char *ukey, const char *akey, time_t now)
{
	time_t wait;

	pthread_mutex_lock(&m->rl_lock);
	wait = ratelimit_blocked(m->rl_user, ukey, now);
	if (wait == 0)
		wait = ratelimit_blocked(m->rl_addr, akey, now);
	pthread_mutex_unlock(&m->rl_lock);
	return wait;
}

void
login_failed(struct manager *m, const char *ukey, const char *akey, time_t now)
{
	pthread_mutex_lock(&m->rl_lock);
	ratelimit_fail(m->rl_user, ukey, now);
	ratelimit_fail(m->rl_addr, akey, now);
	pthread_mutex_unlock(&m->rl_lock);
}

void
login_succeeded(struct manager *m, const char *ukey)
{
	pthread_mutex_lock(&m->rl_lock);
	ratelimit_reset(m->rl_user, ukey);
	pthread_mutex_unlock(&m->rl_lock);
}

int
sessions_create(struct manager *m, const char *user_id, time_t t,
	char token[AUTH_TOKEN_LEN + 1], char csrf[AUTH_TOKEN_LEN + 1])
{
	char th[AUTH_DIGEST_LEN + 1], ch[AUTH_DIGEST_LEN + 1];
	char tid[AUTH_UUID_LEN + 1], now[24], exp[24];

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
	return db_exec(m->db,
		"INSERT INTO api_tokens (id, user_id, token_hash, csrf_hash,"
		" created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
		6, p, NULL);
}

void
sessions_delete(struct manager *m, const char *token)
{
	char th[AUTH_DIGEST_LEN + 1];

	auth_digest(token, th);
	(void)db_exec(m->db, "DELETE FROM api_tokens WHERE token_hash = $1", 1,
		(const char *[]){ th }, NULL);
}

int
sessions_lookup(struct manager *m, const char *token, struct session_info *ret)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	char th[AUTH_DIGEST_LEN + 1], now[24];

	auth_digest(token, th);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	if (db_query(m->db,
		    "SELECT t.csrf_hash, u.username, u.role FROM api_tokens t"
		    " JOIN users u ON u.id = t.user_id"
		    " WHERE t.token_hash = $1 AND t.expires_at > $2",
		    2, (const char *[]){ th, now }, &rows) < 0)
		return -EIO;
	if (rows.nrows == 0)
		return -ENOENT;
	snprintf(ret->csrf_digest, sizeof ret->csrf_digest, "%s",
		db_rows_get(&rows, 0, 0) ?: "");
	snprintf(ret->username, sizeof ret->username, "%s", db_rows_get(&rows, 0, 1) ?: "");
	/* Anything but a known role reads as the weaker one. */
	snprintf(ret->role, sizeof ret->role, "%s",
		strcmp(db_rows_get(&rows, 0, 2) ?: "", "admin") == 0 ? "admin" : "viewer");
	return 0;
}
