/* See auth.h. */
#include "manager/auth/auth.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int
auth_init(void)
{
	return sodium_init() < 0 ? -EIO : 0;
}

int
auth_hash_password(const char *pw, size_t len, char out[AUTH_HASH_MAX])
{
	if (crypto_pwhash_str_alg(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
		    crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return -ENOMEM;
	return 0;
}

bool
auth_verify_password(const char *hash, const char *pw, size_t len)
{
	return crypto_pwhash_str_verify(hash, pw, len) == 0;
}

static void
hex(const unsigned char *in, size_t n, char *out)
{
	sodium_bin2hex(out, n * 2 + 1, in, n);
}

void
auth_new_token(char out[AUTH_TOKEN_LEN + 1])
{
	unsigned char raw[AUTH_TOKEN_LEN / 2];

	randombytes_buf(raw, sizeof raw);
	hex(raw, sizeof raw, out);
	sodium_memzero(raw, sizeof raw);
}

void
auth_digest(const char *s, char out[AUTH_DIGEST_LEN + 1])
{
	unsigned char h[crypto_hash_sha256_BYTES];

	crypto_hash_sha256(h, (const unsigned char *)s, strlen(s));
	hex(h, sizeof h, out);
}

bool
auth_digest_equal(const char *a, const char *b)
{
	size_t n = strlen(a);

	if (n != strlen(b))
		return false;
	return sodium_memcmp(a, b, n) == 0;
}

void
auth_new_uuid(char out[AUTH_UUID_LEN + 1])
{
	unsigned char u[16];

	randombytes_buf(u, sizeof u);
	u[6] = (unsigned char)((u[6] & 0x0f) | 0x40);
	u[8] = (unsigned char)((u[8] & 0x3f) | 0x80);
	snprintf(out, AUTH_UUID_LEN + 1,
		"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		u[12], u[13], u[14], u[15]);
}

void
auth_new_password(char *out, size_t len)
{
	static const char
		alphabet[] = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";

	for (size_t i = 0; i < len; i++)
		out[i] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
	out[len] = '\0';
}

int
auth_cookie_value(const char *header, const char *name, char *buf, size_t sz)
{
	size_t nlen = strlen(name);
	const char *p = header;

	while (p && *p) {
		while (*p == ' ' || *p == ';')
			p++;
		size_t len = strcspn(p, ";");
		if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
			const char *v = p + nlen + 1;
			size_t vlen = len - nlen - 1;

			while (vlen > 0 && v[vlen - 1] == ' ')
				vlen--;
			if (vlen + 1 > sz)
				return -ENOSPC;
			memcpy(buf, v, vlen);
			buf[vlen] = '\0';
			return 0;
		}
		p += len;
	}
	return -ENOENT;
}

const char *
auth_bearer(const char *header)
{
	if (!header || strncasecmp(header, "Bearer ", 7) != 0)
		return NULL;
	header += 7;
	while (*header == ' ')
		header++;
	return *header ? header : NULL;
}
