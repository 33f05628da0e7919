/* Password hashing (argon2id via libsodium), tokens, ids and cookie
 * parsing. No I/O besides libsodium's RNG; no logging. */
#pragma once

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

#define AUTH_HASH_MAX crypto_pwhash_STRBYTES
#define AUTH_TOKEN_LEN 64  /* hex of 32 random bytes */
#define AUTH_DIGEST_LEN 64 /* hex of SHA-256 */
#define AUTH_UUID_LEN 36
#define AUTH_COOKIE_NAME "nqrust_session"

/* Call once before any other function (sodium_init); -EIO on failure. */
int auth_init(void);
/* argon2id (crypto_pwhash_str, interactive limits) of pw[0..len) into
 * out (AUTH_HASH_MAX bytes). -ENOMEM when the hash could not be computed. */
int auth_hash_password(const char *pw, size_t len, char out[AUTH_HASH_MAX]);
/* True when pw matches the stored hash. */
bool auth_verify_password(const char *hash, const char *pw, size_t len);
/* A fresh random token: AUTH_TOKEN_LEN lowercase hex chars + NUL. */
void auth_new_token(char out[AUTH_TOKEN_LEN + 1]);
/* Lowercase hex SHA-256 of s. Tokens are stored only in this form. */
void auth_digest(const char *s, char out[AUTH_DIGEST_LEN + 1]);
/* Constant-time equality of two NUL-terminated digests. */
bool auth_digest_equal(const char *a, const char *b);
/* Random version-4 UUID, lowercase. */
void auth_new_uuid(char out[AUTH_UUID_LEN + 1]);
/* A random printable password of len chars (len < sz) for the first admin. */
void auth_new_password(char *out, size_t len);
/* Find cookie `name` in a Cookie header ("a=b; c=d"); copy its value into
 * buf. -ENOENT when absent, -ENOSPC when longer than sz - 1. */
int auth_cookie_value(const char *header, const char *name, char *buf, size_t sz);
/* Value of "Authorization: Bearer <token>" (scheme case-insensitive), or
 * NULL when the header is absent or another scheme. Points into header. */
const char *auth_bearer(const char *header);
