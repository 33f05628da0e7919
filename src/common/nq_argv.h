/* A NULL-terminated argv vector of strings it owns, for building the
 * argument list of a subprocess (nq_spawn.h) one item at a time, in the
 * spirit of git's strvec. Bounded to NQ_ARGV_MAX items.
 *
 *	_cleanup_(nq_argv_release) struct nq_argv a = { 0 };
 *	if (nq_argv_push(&a, "/sbin/mount.cifs") < 0 || ...) ...
 *	struct spawn_opts o = { .argv = nq_argv_get(&a) };
 *
 * Never put a secret in an argv: it is visible to every local user. */
#pragma once

#include <stddef.h>

#define NQ_ARGV_MAX 256

struct nq_argv {
	char **v;   /* owned, v[n] == NULL once anything was pushed */
	size_t n;   /* items, without the NULL */
	size_t cap; /* slots allocated */
};

/* Append a copy of s. 0, -EINVAL (s NULL), -E2BIG (NQ_ARGV_MAX items) or
 * -ENOMEM; on error the vector is unchanged. */
int nq_argv_push(struct nq_argv *a, const char *s);
/* Append a formatted item; same results. */
int nq_argv_pushf(struct nq_argv *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The vector for spawn: never NULL (an empty vector is { NULL }). Owned
 * by a. */
const char *const *nq_argv_get(const struct nq_argv *a);
/* Hand the vector to the caller (who frees every item and then it) and
 * reset a. NULL when nothing was pushed. */
char **nq_argv_steal(struct nq_argv *a);
/* Free every item and the vector; reset a. NULL-safe, a _cleanup_
 * function. */
void nq_argv_release(struct nq_argv *a);
