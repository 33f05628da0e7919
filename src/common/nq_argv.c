/* argv vectors: see nq_argv.h. */
#include "common/nq_argv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Take ownership of s (freed on failure). */
static int
push_owned(struct nq_argv *a, char *s)
{
	if (!s)
		return -ENOMEM;
	if (a->n >= NQ_ARGV_MAX) {
		free(s);
		return -E2BIG;
	}
	if (a->n + 2 > a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 8;
		char **nv = realloc(a->v, cap * sizeof *nv);

		if (!nv) {
			free(s);
			return -ENOMEM;
		}
		a->v = nv;
		a->cap = cap;
	}
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
	return 0;
}

int
nq_argv_push(struct nq_argv *a, const char *s)
{
	if (!s)
		return -EINVAL;
	return push_owned(a, strdup(s));
}

int
nq_argv_pushf(struct nq_argv *a, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return push_owned(a, n < 0 ? NULL : s);
}

const char *const *
nq_argv_get(const struct nq_argv *a)
{
	static const char *const empty[] = { NULL };

	return a->v ? (const char *const *)a->v : empty;
}

char **
nq_argv_steal(struct nq_argv *a)
{
	char **v = a->v;

	*a = (struct nq_argv){ 0 };
	return v;
}

void
nq_argv_release(struct nq_argv *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	*a = (struct nq_argv){ 0 };
}
