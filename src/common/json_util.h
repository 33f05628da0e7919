/* Typed access to members of a parsed JSON object (jansson), with errors in
 * the contract shape: missing_field / invalid_field naming the key. Shared
 * by route handlers and record stores; nothing here knows about HTTP.
 *
 * Returned strings point into obj: they live as long as obj does. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/nq_buf.h"
#include "common/nq_error.h"

/* Optional string member: *ret = NULL when absent or null; -EINVAL with err
 * set when it is present but not a string or contains a NUL. */
int json_get_string(json_t *obj, const char *key, const char **ret, struct nq_error *err);
/* Same for a required string (missing_field when absent or null). */
int json_req_string(json_t *obj, const char *key, const char **ret, struct nq_error *err);
/* Optional non-negative integer: *ret untouched when absent (and
 * *ret_present, when given, tells which). */
int json_get_u64(json_t *obj, const char *key, unsigned long long *ret, bool *ret_present,
	struct nq_error *err);
/* Required integer in [lo, hi]: missing_field / invalid_field naming key. */
int json_req_uint(json_t *obj, const char *key, unsigned lo, unsigned hi, unsigned *ret,
	struct nq_error *err);

/* Append s as a JSON string literal (quotes included, '"', '\\' and control
 * characters escaped; other bytes as they are: s is valid UTF-8). For
 * bodies that carry a secret without a json_t copy of it: give a wiping
 * buffer. 0, or nq_buf_add's -ENOSPC / -ENOMEM. */
int json_buf_add_string(struct nq_buf *b, const char *s);
