/* A reply body collected by a libcurl write callback, with a size cap: a
 * misbehaving peer cannot make a client allocate without bound. Header-only
 * so that programs that do not link src/common (the CLI) can use it. */
#pragma once

#include <stdlib.h>
#include <string.h>

struct capped_buf {
	char *p;     /* owned, NUL-terminated once anything arrived */
	size_t len;
	size_t max;  /* cap in bytes */
};

/* CURLOPT_WRITEFUNCTION with CURLOPT_WRITEDATA = struct capped_buf *.
 * Returning short makes libcurl fail the transfer (too large or no memory). */
static inline size_t
capped_buf_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct capped_buf *b = ud;
	size_t n = size * nmemb;
	char *np;

	if (n > b->max || b->len > b->max - n)
		return 0;
	np = realloc(b->p, b->len + n + 1);
	if (!np)
		return 0;
	memcpy(np + b->len, ptr, n);
	b->p = np;
	b->len += n;
	b->p[b->len] = '\0';
	return n;
}
