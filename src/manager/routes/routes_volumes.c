/* /v1/volumes: volumes on storage backends (services/volumes.c). The API
 * creates empty sparse volumes (or clones of an image) and deletes them;
 * VM rootfs volumes come from the VM service. */
#include <string.h>

#include "common/json_util.h"
#include "common/validate.h"
#include "manager/manager.h"
#include "manager/routes/routes.h"
#include "manager/services/volumes.h"

static void
list_volumes(struct http_request *req, struct http_response *resp)
{
	json_t *arr = volumes_list_json(req->userdata);

	if (!arr)
		http_reply_errorf(resp, "internal_error", NULL, "database error");
	else
		http_reply_json(resp, 200, arr);
}

static void
get_volume(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };
	json_t *v = volumes_get_json(req->userdata, req->params[0], &err);

	if (!v)
		http_reply_error(resp, &err);
	else
		http_reply_json(resp, 200, v);
}

/* The body: backend_id, and image or size_bytes (> 0), checked here. */
static int
parse_create(struct http_request *req, json_t **ret_body, const char **ret_backend,
	const char **ret_image, unsigned long long *ret_size, struct nq_error *err)
{
	static const char *const keys[] = { "backend_id", "size_bytes", "image", NULL };
	bool have_size = false;

	*ret_image = NULL;
	*ret_size = 0;
	if (http_parse_object(req, keys, ret_body, err) < 0 ||
		json_req_string(*ret_body, "backend_id", ret_backend, err) < 0 ||
		json_get_string(*ret_body, "image", ret_image, err) < 0 ||
		json_get_u64(*ret_body, "size_bytes", ret_size, &have_size, err) < 0)
		return -EINVAL;
	if (*ret_image && validate_image_name("image", *ret_image, err) < 0)
		return -EINVAL;
	if (!*ret_image && (!have_size || *ret_size == 0))
		return nq_error_setr(err, -EINVAL, "missing_field", "size_bytes",
			"size_bytes (> 0) is required for an empty volume");
	if (*ret_size > VOLUME_SIZE_MAX)
		return nq_error_setr(err, -EINVAL, "invalid_field", "size_bytes",
			"size_bytes must not exceed %llu", VOLUME_SIZE_MAX);
	return 0;
}

static void
create_volume(struct http_request *req, struct http_response *resp)
{
	struct manager *m = req->userdata;
	struct nq_error err = { 0 };
	const char *backend_id = NULL, *image = NULL;
	unsigned long long size = 0;
	char vid[AUTH_UUID_LEN + 1];
	json_t *body = NULL, *v;

	if (parse_create(req, &body, &backend_id, &image, &size, &err) < 0 ||
		volumes_create(m, backend_id, image, size, vid, &err) < 0) {
		json_decref(body);
		http_reply_error(resp, &err);
		return;
	}
	json_decref(body);
	v = volumes_get_json(m, vid, &err);
	if (!v)
		http_reply_errorf(resp, "internal_error", NULL, "database error");
	else
		http_reply_json(resp, 201, v);
}

static void
delete_volume(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };

	if (volumes_delete(req->userdata, req->params[0], &err) < 0)
		http_reply_error(resp, &err);
	else
		http_reply_empty(resp, 204);
}

const struct http_route volume_routes[] = {
	{ "GET", "/v1/volumes", list_volumes, 0, 0, NULL },
	{ "POST", "/v1/volumes", create_volume, 0, 0, NULL },
	{ "GET", "/v1/volumes/{id}", get_volume, 0, 0, NULL },
	{ "DELETE", "/v1/volumes/{id}", delete_volume, 0, 0, NULL },
};
const size_t volume_routes_count = sizeof volume_routes / sizeof volume_routes[0];
