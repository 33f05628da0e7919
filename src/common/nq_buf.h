/* One bounded growable byte buffer for building strings and collecting
 * bodies (in the spirit of git's strbuf, with a hard cap).
 *
 * Invariants: p is NULL until the first byte is added; afterwards p holds
 * len bytes followed by a NUL and cap bytes are allocated (cap > len).
 * len never exceeds max. Growth is geometric (doubling), never per chunk.
 * An add that would pass max is refused whole: it sets overflow and
 * returns -ENOSPC, and every later add is refused too, so the content is
 * never a silently truncated string. With wipe set, every byte the buffer
 * ever held is cleared (explicit_bzero) before its memory is freed, on
 * growth and on release: use it for anything that may hold a password or
 * a token.
 *
 * Ownership: the buffer owns p until nq_buf_steal hands it to the caller.
 * No dependency on the rest of src/common: the CLI links nq_buf.c alone.
 *
 *	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(4096, false);
 *	if (nq_buf_addf(&b, "%s=%u", key, v) < 0) ...
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct nq_buf {
	char *p;       /* owned; NUL-terminated when not NULL */
	size_t len;    /* bytes held, without the NUL */
	size_t cap;    /* bytes allocated, NUL included */
	size_t max;    /* hard cap on len */
	bool wipe;     /* explicit_bzero before every free */
	bool overflow; /* an add was refused for max: the content is short */
};

#define NQ_BUF_INIT(max_, wipe_)                                                          \
	{                                                                                 \
		.max = (max_), .wipe = (wipe_)                                            \
	}

void nq_buf_init(struct nq_buf *b, size_t max, bool wipe);
/* Append n bytes (binary safe). 0, -ENOSPC (past max, sets overflow) or
 * -ENOMEM (the buffer is unchanged). */
int nq_buf_add(struct nq_buf *b, const void *data, size_t n);
/* Append formatted text; same results as nq_buf_add. */
int nq_buf_addf(struct nq_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The content as a string: "" while empty. Owned by b. */
static inline const char *
nq_buf_str(const struct nq_buf *b)
{
	return b->p ? b->p : "";
}
/* Hand the NUL-terminated content to the caller (who frees it, after
 * explicit_bzero when it is secret) and reset b to empty, keeping max and
 * wipe. NULL when b overflowed (b is released) or out of memory. */
char *nq_buf_steal(struct nq_buf *b);
/* Free the content (wiped first when b->wipe) and reset b to empty,
 * keeping max and wipe. NULL-safe; usable as a _cleanup_ function. */
void nq_buf_release(struct nq_buf *b);

/* fwrite-style sink, e.g. libcurl's CURLOPT_WRITEFUNCTION with
 * CURLOPT_WRITEDATA = struct nq_buf *: returns nmemb * size, or 0 (which
 * fails the transfer) when the bytes do not fit or memory runs out. */
size_t nq_buf_write_cb(char *ptr, size_t size, size_t nmemb, void *ud);
