/* Users and sessions (the service behind routes_auth.c): the first admin,
 * password checks, failed-login throttling, API tokens. Tokens are random
 * 256-bit values; only their SHA-256 (and that of the session's CSRF
 * token) is stored. */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "common/http_server.h"
#include "manager/auth/auth.h"

struct manager;

#define AUTH_PASSWORD_MAX 1024 /* bytes, a login's or the first admin's */

/* Create the first admin when there is no user yet (password from
 * NQRUST_ADMIN_PASSWORD, which is wiped, or generated and printed once). */
int auth_bootstrap(struct manager *m);

/* Failed logins are counted per ukey (username with client address) and
 * per akey (client address). Seconds to wait, 0 when not blocked. */
time_t login_blocked(struct manager *m, const char *ukey, const char *akey, time_t now);
void login_failed(struct manager *m, const char *ukey, const char *akey, time_t now);
void login_succeeded(struct manager *m, const char *ukey);

/* 0 when the credentials are right (fills user_id), -EACCES when not,
 * another -errno on a database error. Costs one argon2id either way. */
int sessions_check_password(struct manager *m, const char *username, const char *pw,
	char user_id[AUTH_UUID_LEN + 1]);
/* A new session for user_id valid from now for the configured TTL: fresh
 * token and CSRF token into the buffers (the caller wipes them). */
int sessions_create(struct manager *m, const char *user_id, time_t now,
	char token[AUTH_TOKEN_LEN + 1], char csrf[AUTH_TOKEN_LEN + 1]);
/* Forget the session of token (nothing when unknown). */
void sessions_delete(struct manager *m, const char *token);
/* What a live session says about its user. */
struct session_info {
	char csrf_digest[AUTH_DIGEST_LEN + 1];
	char username[HTTP_AUTH_USER_MAX];
	char role[HTTP_AUTH_ROLE_MAX]; /* "admin" or "viewer" */
};
/* The live session of token: 0 with *ret filled, -ENOENT when unknown
 * or expired, -EIO on a database error. */
int sessions_lookup(struct manager *m, const char *token, struct session_info *ret);
