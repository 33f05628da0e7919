/* Query-string arguments of the list routes (?limit=&offset=&…): parsed
 * strictly, a bad value is 400 naming the argument. */
#pragma once

#include <stdbool.h>

#include "common/http_server.h"

/* ?name=N with lo <= N <= hi; *ret = def when absent. */
int query_uint(const struct http_request *req, const char *name, unsigned long long lo,
	unsigned long long hi, unsigned long long def, unsigned long long *ret,
	struct nq_error *err);
/* ?name=S: 1..maxlen printable ASCII characters without spaces; *ret =
 * NULL when absent. Points into the request. */
int query_word(const struct http_request *req, const char *name, unsigned maxlen,
	const char **ret, struct nq_error *err);
