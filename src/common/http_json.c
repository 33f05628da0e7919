/* JSON request bodies: strict parsing for route handlers (declared in
 * http_server.h). Member access is in json_util.c. */
#include "common/http_server.h"

#include <string.h>

int
http_parse_object(const struct http_request *req, const char *const *allowed, json_t **ret,
	struct nq_error *err)
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
		bool ok = !allowed; /* NULL: the caller checks the keys itself */

		for (const char *const *a = allowed; a && *a; a++)
			if (strcmp(*a, key) == 0)
				ok = true;
		if (!ok) {
			/* The key is echoed as the field name; cap it. */
			nq_error_set(err, "unknown_field", key, "unknown field '%.48s'",
				key);
			json_decref(obj);
			return -EINVAL;
		}
	}
	*ret = obj;
	return 0;
}
