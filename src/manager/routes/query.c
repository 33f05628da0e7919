/* See query.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "manager/routes/query.h"

int
query_uint(const struct http_request *req, const char *name, unsigned long long lo,
	unsigned long long hi, unsigned long long def, unsigned long long *ret,
	struct nq_error *err)
{
	const char *v = http_query(req, name);
	unsigned long long n;
	char *end = NULL;

	if (!v) {
		*ret = def;
		return 0;
	}
	errno = 0;
	n = strtoull(v, &end, 10);
	if (!*v || strlen(v) > 19 || v[strspn(v, "0123456789")] || errno || *end ||
		n < lo || n > hi)
		return nq_error_setr(err, -EINVAL, "invalid_field", name,
			"%s must be an integer from %llu to %llu", name, lo, hi);
	*ret = n;
	return 0;
}

int
query_word(const struct http_request *req, const char *name, unsigned maxlen,
	const char **ret, struct nq_error *err)
{
	const char *v = http_query(req, name);

	*ret = NULL;
	if (!v)
		return 0;
	if (!*v || strlen(v) > maxlen)
		return nq_error_setr(err, -EINVAL, "invalid_field", name,
			"%s must be 1 to %u characters", name, maxlen);
	for (const char *p = v; *p; p++)
		if (*p <= ' ' || *p > '~')
			return nq_error_setr(err, -EINVAL, "invalid_field", name,
				"%s may hold only printable characters", name);
	*ret = v;
	return 0;
}
