/* Copies between volumes (route data: the storage kind) and snapshots of
 * a VM's disk: storage/volumes_copy.h, vmm/vms_snapshot.h. Bodies are
 * strict; every id is validated as a UUID and the modules build the
 * paths. */
#include <string.h>

#include "common/http_server.h"
#include "common/json_util.h"
#include "common/validate.h"
#include "agent/api/api.h"
#include "agent/storage/volumes_copy.h"
#include "agent/vmm/vms_snapshot.h"

static json_t *
volume_json(const char *volume_id, const struct volume_info *v)
{
	return json_pack("{s:s, s:s, s:I, s:o, s:I, s:s}", "volume_id", volume_id, "path",
		v->path, "size_bytes", (json_int_t)v->size_bytes, "allocated_bytes",
		v->allocated_bytes < 0 ? json_null() : json_integer(v->allocated_bytes),
		"bytes_copied", (json_int_t)v->copy.bytes_written, "copy_method",
		copy_method_name(v->copy.method));
}

/* {one_key: uuid} into out. */
static int
parse_uuid_body(struct http_request *req, const char *key, char out[NQ_UUID_LEN + 1],
	struct nq_error *err)
{
	const char *const keys[] = { key, NULL };
	json_t *body = NULL;
	const char *s;
	int r;

	if ((r = http_parse_object(req, keys, &body, err)) >= 0 &&
		(r = json_req_string(body, key, &s, err)) >= 0)
		r = validate_uuid(key, s, out, err);
	json_decref(body);
	return r;
}

/* POST /v1/storage/<kind>/volumes/{backend_id}/{volume_id}/copy
 * {source_volume_id} → 201: a new volume, a copy of the source;
 * .../revert {source_volume_id} → 200: the volume's content replaced by a
 * copy of the source (refused while a VM of this host runs on it). */
static void
copy_or_revert(struct http_request *req, struct http_response *resp, bool replace)
{
	char bid[NQ_UUID_LEN + 1], vid[NQ_UUID_LEN + 1], src[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	struct volume_info info;
	int r;

	r = KIND(req)->check_backend_id("backend_id", req->params[0], bid, &err);
	if (r >= 0)
		r = validate_uuid("volume_id", req->params[1], vid, &err);
	if (r >= 0)
		r = parse_uuid_body(req, "source_volume_id", src, &err);
	if (r >= 0 && replace && vms_volume_in_use(AGENT(req), vid))
		r = nq_error_setr(&err, -EBUSY, "invalid_state", "volume_id",
			"a VM of this host runs on volume %s: stop it first", vid);
	if (r >= 0)
		r = volumes_copy(AGENT(req), KIND(req), bid, vid, src, replace, &info,
			&err);
	if (r < 0) {
		http_reply_error(resp, &err);
		return;
	}
	http_reply_json(resp, replace ? 200 : 201, volume_json(vid, &info));
}

void
api_copy_volume(struct http_request *req, struct http_response *resp)
{
	copy_or_revert(req, resp, false);
}

void
api_revert_volume(struct http_request *req, struct http_response *resp)
{
	copy_or_revert(req, resp, true);
}

/* POST /v1/vms/{id}/snapshot {volume_id} → 201 {volume…, paused}. */
void
api_vm_snapshot(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1], vid[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	struct volume_info info;
	bool paused = false;
	json_t *o;
	int r;

	if (!api_param_uuid(req, 0, "id", id, resp))
		return;
	r = parse_uuid_body(req, "volume_id", vid, &err);
	if (r >= 0)
		r = vms_snapshot(AGENT(req), id, vid, &paused, &info, &err);
	if (r < 0) {
		http_reply_error(resp, &err);
		return;
	}
	o = volume_json(vid, &info);
	if (o)
		json_object_set_new(o, "paused", json_boolean(paused));
	http_reply_json(resp, 201, o);
}
