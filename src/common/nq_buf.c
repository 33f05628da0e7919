/* Bounded growable buffer: see nq_buf.h for the invariants. */
#include "common/nq_buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NQ_BUF_MIN_CAP 64

void
nq_buf_init(struct nq_buf *b, size_t max, bool wipe)
{
	*b = (struct nq_buf){ .max = max, .wipe = wipe };
}

void
nq_buf_release(struct nq_buf *b)
{
	if (!b)
		return;
	if (b->p && b->wipe)
		explicit_bzero(b->p, b->cap);
	free(b->p);
	nq_buf_init(b, b->max, b->wipe);
}

/* Make room for `need` bytes plus the NUL. need <= max is checked by the
 * caller. Doubling, capped at max + 1. A wiping buffer never reallocs:
 * realloc may free the old block without clearing it. */
static int
grow(struct nq_buf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : NQ_BUF_MIN_CAP;
	char *np;

	if (need < b->cap)
		return 0;
	while (cap <= need)
		cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
	if (b->max < SIZE_MAX && cap > b->max + 1)
		cap = b->max + 1;
	if (!b->wipe) {
		np = realloc(b->p, cap);
	} else if ((np = malloc(cap)) && b->p) {
		memcpy(np, b->p, b->len + 1);
		explicit_bzero(b->p, b->cap);
		free(b->p);
	}
	if (!np)
		return -ENOMEM;
	np[b->len] = '\0';
	b->p = np;
	b->cap = cap;
	return 0;
}

/* Room for n more bytes, or -ENOSPC (sticky) / -ENOMEM. */
static int
reserve(struct nq_buf *b, size_t n)
{
	if (b->overflow || b->len > b->max || n > b->max - b->len) {
		b->overflow = true;
		return -ENOSPC;
	}
	return grow(b, b->len + n);
}

int
nq_buf_add(struct nq_buf *b, const void *data, size_t n)
{
	int r = reserve(b, n);

	if (r < 0)
		return r;
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

int
nq_buf_addf(struct nq_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n, r;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	r = reserve(b, (size_t)n);
	if (r < 0)
		return r;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

char *
nq_buf_steal(struct nq_buf *b)
{
	char *s;

	if (b->overflow) {
		nq_buf_release(b);
		return NULL;
	}
	s = b->p ? b->p : strdup("");
	nq_buf_init(b, b->max, b->wipe);
	return s;
}

size_t
nq_buf_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
	size_t n;

	if (size && nmemb > SIZE_MAX / size)
		return 0;
	n = size * nmemb;
	return nq_buf_add(ud, ptr, n) < 0 ? 0 : n;
}
