/* Typed JSON member access: see json_util.h. */
#include "common/json_util.h"

#include <errno.h>
#include <string.h>

int
json_get_string(json_t *obj, const char *key, const char **ret, struct nq_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v)) {
		*ret = NULL;
		return 0;
	}
	if (!json_is_string(v))
		return nq_error_set(err, "invalid_field", key, "%s must be a string", key);
	if (strlen(json_string_value(v)) != json_string_length(v))
		return nq_error_set(err, "invalid_field", key,
			"%s must not contain NUL characters", key);
	*ret = json_string_value(v);
	return 0;
}

int
json_req_string(json_t *obj, const char *key, const char **ret, struct nq_error *err)
{
	const char *s;
	int r = json_get_string(obj, key, &s, err);

	if (r < 0)
		return r;
	if (!s)
		return nq_error_set(err, "missing_field", key, "%s is required", key);
	*ret = s;
	return 0;
}

int
json_get_u64(json_t *obj, const char *key, unsigned long long *ret, bool *ret_present,
	struct nq_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (ret_present)
		*ret_present = false;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return nq_error_set(err, "invalid_field", key,
			"%s must be a non-negative integer", key);
	*ret = (unsigned long long)json_integer_value(v);
	if (ret_present)
		*ret_present = true;
	return 0;
}

int
json_req_uint(json_t *obj, const char *key, unsigned lo, unsigned hi, unsigned *ret,
	struct nq_error *err)
{
	unsigned long long v = 0;
	bool present = false;
	int r = json_get_u64(obj, key, &v, &present, err);

	if (r < 0)
		return r;
	if (!present)
		return nq_error_set(err, "missing_field", key, "%s is required", key);
	if (v < lo || v > hi)
		return nq_error_set(err, "invalid_field", key,
			"%s must be between %u and %u", key, lo, hi);
	*ret = (unsigned)v;
	return 0;
}

int
json_buf_add_string(struct nq_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int r = nq_buf_add(b, "\"", 1);

	for (const unsigned char *q = (const unsigned char *)s; r >= 0 && *q; q++) {
		if (*q == '"' || *q == '\\') {
			char esc[2] = { '\\', (char)*q };
			r = nq_buf_add(b, esc, sizeof esc);
		} else if (*q < 0x20) {
			char esc[6] = { '\\', 'u', '0', '0', hex[*q >> 4], hex[*q & 15] };
			r = nq_buf_add(b, esc, sizeof esc);
		} else {
			r = nq_buf_add(b, q, 1);
		}
	}
	return r < 0 ? r : nq_buf_add(b, "\"", 1);
}
