/* JSON request bodies: strict parsing and typed member access for route
 * handlers (declared in http_server.h). */
#include "common/http_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"

int
http_parse_object(const struct http_request *req, const char *const *allowed,
	json_t **ret, struct nq_error *err)
{
	json_error_t jerr;
	json_t *obj;
	const char *key;
	json_t *val;

	if (!req->body || req->body_len == 0)
		return nq_error_set(err, "invalid_json", NULL,
			"the request body must be a JSON object");
	obj = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!obj)
		return nq_error_set(err, "invalid_json", NULL,
			"the request body is not valid JSON: %s (line %d, column %d)",
			jerr.text, jerr.line, jerr.column);
	if (!json_is_object(obj)) {
		json_decref(obj);
		return nq_error_set(err, "invalid_json", NULL,
			"the request body must be a JSON object");
	}
	json_object_foreach(obj, key, val) {
		bool ok = false;

		for (const char *const *a = allowed; a && *a; a++)
			if (strcmp(*a, key) == 0)
				ok = true;
		if (!ok) {
			/* The key is echoed as the field name; cap it. */
			nq_error_set(err, "unknown_field", key,
				"unknown field '%.48s'", key);
			json_decref(obj);
			return -EINVAL;
		}
	}
	*ret = obj;
	return 0;
}

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
json_get_u64(json_t *obj, const char *key, unsigned long long *ret,
	bool *ret_present, struct nq_error *err)
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
json_save_record(int dirfd, const char *id, json_t *j)
{
	char name[128], *text;
	int r;

	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	if ((size_t)snprintf(name, sizeof name, "%s.json", id) >= sizeof name)
		r = -ENAMETOOLONG;
	else
		r = fs_write_atomic(dirfd, name, text, strlen(text), 0600);
	free(text);
	return r;
}
