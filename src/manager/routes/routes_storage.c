/* /v1/storage/backends: HTTP parsing and replies around storage.c. */
#include <stdio.h>
#include <string.h>

#include "manager/manager.h"
#include "manager/routes/routes.h"
#include "manager/services/storage.h"
#include "common/json_util.h"

static void
reply_backend(struct manager *m, struct http_response *resp, int status, const char *id)
{
	struct registry_item it = { 0 };
	json_t *counts;
	long long n = 0;

	if (registry_item_get(m->reg, id, &it) < 0) {
		http_reply_errorf(resp, "not_found", NULL, "no backend with id %s", id);
		return;
	}
	counts = storage_volume_counts(m);
	n = json_integer_value(json_object_get(counts, id));
	json_decref(counts);
	http_reply_json(resp, status, storage_backend_json(m, &it, n));
	registry_item_release(&it);
}

static void
list_backends(struct http_request *req, struct http_response *resp)
{
	struct manager *m = req->userdata;
	struct registry_item *items = NULL;
	json_t *arr, *counts;
	size_t n = 0;

	counts = storage_volume_counts(m);
	if (!counts || registry_snapshot(m->reg, &items, &n) < 0) {
		json_decref(counts);
		http_reply_errorf(resp, "internal_error", NULL, "cannot list backends");
		return;
	}
	arr = json_array();
	for (size_t i = 0; arr && i < n; i++)
		json_array_append_new(arr,
			storage_backend_json(m, &items[i],
				json_integer_value(json_object_get(counts,
					items[i].b->id))));
	registry_items_free(items, n);
	json_decref(counts);
	http_reply_json(resp, 200, arr);
}

static void
get_backend(struct http_request *req, struct http_response *resp)
{
	reply_backend(req->userdata, resp, 200, req->params[0]);
}

static int
get_bool(json_t *obj, const char *key, bool *ret, struct nq_error *err)
{
	json_t *v = json_object_get(obj, key);

	if (!v || json_is_null(v))
		return 0;
	if (!json_is_boolean(v))
		return nq_error_set(err, "invalid_field", key, "%s must be true or false",
			key);
	*ret = json_is_true(v);
	return 0;
}

static int
get_config(json_t *obj, json_t **ret, struct nq_error *err)
{
	json_t *v = json_object_get(obj, "config");

	*ret = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_object(v))
		return nq_error_set(err, "invalid_field", "config",
			"config must be an object");
	*ret = v;
	return 0;
}

static void
create_backend(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "name", "kind", "config", "is_default",
		"host_id", NULL };
	struct manager *m = req->userdata;
	struct backend_create bc = { 0 };
	struct nq_error err = { 0 };
	char id[BACKEND_ID_MAX + 1];
	const char *kind = NULL;
	json_t *body = NULL;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "name", &bc.name, &err) < 0 ||
		json_req_string(body, "kind", &kind, &err) < 0 ||
		get_config(body, &bc.config, &err) < 0 ||
		json_get_string(body, "host_id", &bc.host_id, &err) < 0 ||
		get_bool(body, "is_default", &bc.make_default, &err) < 0)
		goto fail;
	bc.ops = backend_ops_find(kind);
	if (!bc.ops) {
		nq_error_set(&err, "invalid_field", "kind",
			"kind must be one of: localfile, smb");
		goto fail;
	}
	if (!bc.config) {
		nq_error_set(&err, "missing_field", "config", "config is required");
		goto fail;
	}
	if (storage_create(m, &bc, id, &err) < 0)
		goto fail;
	json_decref(body);
	reply_backend(m, resp, 201, id);
	return;
fail:
	json_decref(body);
	http_reply_error(resp, &err);
}

static void
update_backend(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "name", "config", "rotate_password",
		"is_default", NULL };
	struct manager *m = req->userdata;
	struct backend_update bu = { 0 };
	struct nq_error err = { 0 };
	bool want_default = false, has_default;
	json_t *body = NULL;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_get_string(body, "name", &bu.name, &err) < 0 ||
		get_config(body, &bu.config, &err) < 0 ||
		json_get_string(body, "rotate_password", &bu.rotate_password, &err) < 0 ||
		get_bool(body, "is_default", &want_default, &err) < 0)
		goto fail;
	has_default = json_object_get(body, "is_default") &&
		      !json_is_null(json_object_get(body, "is_default"));
	if (has_default && !want_default) {
		nq_error_set(&err, "invalid_field", "is_default",
			"is_default can only be set to true; make another backend the default instead");
		goto fail;
	}
	bu.make_default = want_default;
	if (storage_update(m, req->params[0], &bu, &err) < 0)
		goto fail;
	json_decref(body);
	reply_backend(m, resp, 200, req->params[0]);
	return;
fail:
	json_decref(body);
	http_reply_error(resp, &err);
}

static void
delete_backend(struct http_request *req, struct http_response *resp)
{
	struct manager *m = req->userdata;
	struct nq_error err = { 0 };
	json_t *vols = NULL;

	if (storage_delete(m, req->params[0], &vols, &err) >= 0) {
		http_reply_empty(resp, 204);
		return;
	}
	if (!vols) {
		http_reply_error(resp, &err);
		return;
	}
	/* backend_in_use names the volumes inside the error object. */
	http_reply_json(resp, nq_error_http_status(err.code),
		json_pack("{s:{s:s, s:s, s:o}}", "error", "code", err.code, "message",
			err.message, "volumes", vols));
}

const struct http_route storage_routes[] = {
	{ "GET", "/v1/storage/backends", list_backends, 0, 0, NULL },
	{ "POST", "/v1/storage/backends", create_backend, ROUTE_SENSITIVE, 0, NULL },
	{ "GET", "/v1/storage/backends/{id}", get_backend, 0, 0, NULL },
	{ "PATCH", "/v1/storage/backends/{id}", update_backend, ROUTE_SENSITIVE, 0, NULL },
	{ "DELETE", "/v1/storage/backends/{id}", delete_backend, 0, 0, NULL },
	{ "GET", "/v1/storage/backends/{id}/cache", routes_get_backend_cache, 0, 0, NULL },
	{ "DELETE", "/v1/storage/backends/{id}/cache", routes_delete_backend_cache, 0, 0,
		NULL },
	{ "DELETE", "/v1/storage/backends/{id}/cache/{hash}", routes_delete_backend_cache,
		0, 0, NULL },
};
const size_t storage_routes_count = sizeof storage_routes / sizeof storage_routes[0];
