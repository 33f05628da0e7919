/* struct secret: a password in memory that is wiped before it is freed. */
#include "common/secret.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
secret_new(const char *s, size_t len, struct secret **ret)
{
	struct secret *sec;

	if (!s && len > 0)
		return -EINVAL;
	if (len == SIZE_MAX)
		return -ENOMEM;
	sec = calloc(1, sizeof *sec);
	if (!sec)
		return -ENOMEM;
	sec->buf = malloc(len + 1);
	if (!sec->buf) {
		free(sec);
		return -ENOMEM;
	}
	if (len > 0)
		memcpy(sec->buf, s, len);
	sec->buf[len] = '\0';
	sec->len = len;
	*ret = sec;
	return 0;
}

void
secret_free(struct secret *s)
{
	if (!s)
		return;
	if (s->buf) {
		explicit_bzero(s->buf, s->len + 1);
		free(s->buf);
	}
	explicit_bzero(s, sizeof *s);
	free(s);
}

bool
secret_equal(const struct secret *a, const struct secret *b)
{
	unsigned char diff = 0;

	if (!a || !b)
		return a == b;
	if (a->len != b->len)
		return false;
	for (size_t i = 0; i < a->len; i++)
		diff |= (unsigned char)(a->buf[i] ^ b->buf[i]);
	return diff == 0;
}
