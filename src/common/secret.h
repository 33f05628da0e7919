/* A secret (password) in memory: wiped on release, never printable. The
 * buffer is NUL-terminated for APIs that need a C string, but there is no
 * function that formats it for a log or an error. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct secret {
	char *buf; /* owned; len bytes + NUL */
	size_t len;
};

/* Copy len bytes of s into a new secret; -ENOMEM. */
int secret_new(const char *s, size_t len, struct secret **ret);
/* Same length and bytes, compared in constant time for equal lengths.
 * Two NULLs are equal; NULL and non-NULL are not. */
bool secret_equal(const struct secret *a, const struct secret *b);
/* explicit_bzero and free; NULL-safe. */
void secret_free(struct secret *s);
static inline void
secret_freep(struct secret **s)
{
	secret_free(*s);
}
#define _cleanup_secret_ __attribute__((cleanup(secret_freep)))
