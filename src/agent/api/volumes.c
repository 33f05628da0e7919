/* The volume routes, shared by every storage kind (the route's data is
 * the kind, storage/kind.h): create, list, delete; a backend's capacity;
 * the image directory. */
#include <string.h>

#include "common/http_server.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/validate.h"
#include "agent/api/api.h"
#include "agent/mounts/mounts.h"
#include "agent/storage/volumes.h"

static void
reply_capacity(struct http_response *resp, const struct capacity *c)
{
	json_t *o = json_pack("{s:I, s:I, s:I, s:I}", "total_bytes",
		(json_int_t)c->total_bytes, "used_bytes", (json_int_t)c->used_bytes,
		"free_bytes", (json_int_t)c->free_bytes, "available_bytes",
		(json_int_t)c->free_bytes);

	if (o && c->health[0]) {
		json_object_set_new(o, "health", json_string(c->health));
		json_object_set_new(o, "health_message", json_string(c->health_message));
	}
	http_reply_json(resp, 200, o);
}

/* GET the capacity of a backend of the route's kind. */
void
api_get_capacity(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	struct capacity c;

	if (KIND(req)->check_backend_id("backend_id", req->params[0], id, &err) < 0 ||
		KIND(req)->capacity(AGENT(req), id, &c, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	reply_capacity(resp, &c);
}

/* POST /v1/storage/<kind>/volumes {backend_id, volume_id, image?, size_bytes?} */
void
api_post_volume(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "backend_id", "volume_id", "image",
		"size_bytes", NULL };
	char bid[NQ_UUID_LEN + 1], vid[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	const char *b, *v, *image;
	unsigned long long size = 0;
	struct volume_info info;
	json_t *body = NULL;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "backend_id", &b, &err) < 0 ||
		json_req_string(body, "volume_id", &v, &err) < 0 ||
		json_get_string(body, "image", &image, &err) < 0 ||
		json_get_u64(body, "size_bytes", &size, NULL, &err) < 0 ||
		KIND(req)->check_backend_id("backend_id", b, bid, &err) < 0 ||
		validate_uuid("volume_id", v, vid, &err) < 0 ||
		(image && validate_image_name("image", image, &err) < 0) ||
		volumes_create(AGENT(req), KIND(req), bid, vid, image, size, &info, &err) <
			0) {
		http_reply_error(resp, &err);
		json_decref(body);
		return;
	}
	json_decref(body);
	http_reply_json(resp, 201,
		json_pack("{s:s, s:I, s:o, s:I, s:o, s:s}", "path", info.path,
			"size_bytes", (json_int_t)info.size_bytes, "allocated_bytes",
			info.allocated_bytes < 0 ? json_null()
						 : json_integer(info.allocated_bytes),
			"bytes_copied", (json_int_t)info.copy.bytes_written, "copy_method",
			info.copy.method ? json_string(copy_method_name(info.copy.method))
					 : json_null(),
			"base_cache", basecache_outcome_name(info.cache)));
}

void
api_list_volumes(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	json_t *arr;

	if (KIND(req)->check_backend_id("backend_id", req->params[0], id, &err) < 0 ||
		volumes_list(AGENT(req), KIND(req), id, &arr, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	http_reply_json(resp, 200, arr);
}

void
api_delete_volume(struct http_request *req, struct http_response *resp)
{
	char bid[NQ_UUID_LEN + 1], vid[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	int r = KIND(req)->check_backend_id("backend_id", req->params[0], bid, &err);

	if (r >= 0)
		r = validate_uuid("volume_id", req->params[1], vid, &err);
	if (r >= 0)
		r = volumes_delete(AGENT(req), KIND(req), bid, vid, &err);
	api_reply_done(resp, r, &err);
}

void
api_list_images(struct http_request *req, struct http_response *resp)
{
	json_t *arr;
	int r = images_list(AGENT(req), &arr);

	if (r < 0) {
		http_reply_errorf(resp, "io_error", NULL,
			"cannot list the image directory: %s", strerror(-r));
		return;
	}
	http_reply_json(resp, 200, arr);
}
