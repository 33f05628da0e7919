/* Disk snapshots (issue 13; services/vms_snapshots.h):
 * GET/POST /v1/vms/{id}/snapshots, GET/DELETE /v1/vms/{id}/snapshots/{sid},
 * POST /v1/vms/{id}/revert {snapshot_id}, GET /v1/snapshots/{sid}. A VM
 * made from a snapshot is POST /v1/vms {…, source_snapshot_id}
 * (routes_vms.c). */
#include <string.h>

#include "common/json_util.h"
#include "manager/manager.h"
#include "manager/routes/routes.h"
#include "manager/services/vms.h"
#include "manager/services/vms_snapshots.h"

/* Path ids longer than a UUID name nothing: 404 without a lookup. */
static bool
ids_ok(struct http_request *req, unsigned n, struct http_response *resp)
{
	for (unsigned i = 0; i < n; i++)
		if (strlen(req->params[i]) > AUTH_UUID_LEN) {
			http_reply_errorf(resp, "not_found", NULL, "no such %s",
				i ? "snapshot" : "VM");
			return false;
		}
	return true;
}

static void
reply_or_error(struct http_response *resp, int status, json_t *o,
	const struct nq_error *err)
{
	if (!o)
		http_reply_error(resp, err);
	else
		http_reply_json(resp, status, o);
}

static void
list_snapshots(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };

	if (ids_ok(req, 1, resp))
		reply_or_error(resp, 200,
			snapshots_list_json(req->userdata, req->params[0], &err), &err);
}

static void
get_snapshot(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };
	bool nested = req->route_data != NULL;

	if (ids_ok(req, nested ? 2 : 1, resp))
		reply_or_error(resp, 200,
			snapshots_get_json(req->userdata, nested ? req->params[0] : NULL,
				req->params[nested ? 1 : 0], &err),
			&err);
}

/* POST /v1/vms/{id}/snapshots {name} → 201 snapshot. */
static void
create_snapshot(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "name", NULL };
	struct nq_error err = { 0 };
	char sid[AUTH_UUID_LEN + 1];
	const char *name = NULL;
	json_t *body = NULL;

	if (!ids_ok(req, 1, resp))
		return;
	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "name", &name, &err) < 0 ||
		snapshots_create(req->userdata, req->params[0], name, sid, &err) < 0) {
		json_decref(body);
		http_reply_error(resp, &err);
		return;
	}
	json_decref(body);
	reply_or_error(resp, 201, snapshots_get_json(req->userdata, NULL, sid, &err), &err);
}

static void
delete_snapshot(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };

	if (!ids_ok(req, 2, resp))
		return;
	if (snapshots_delete(req->userdata, req->params[0], req->params[1], &err) < 0)
		http_reply_error(resp, &err);
	else
		http_reply_empty(resp, 204);
}

/* POST /v1/vms/{id}/revert {snapshot_id} → 200 VM. */
static void
revert_vm(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "snapshot_id", NULL };
	struct nq_error err = { 0 };
	const char *sid = NULL;
	json_t *body = NULL;

	if (!ids_ok(req, 1, resp))
		return;
	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "snapshot_id", &sid, &err) < 0 ||
		(strlen(sid) > AUTH_UUID_LEN &&
			nq_error_set(&err, "not_found", "snapshot_id",
				"no such snapshot") < 0) ||
		snapshots_revert(req->userdata, req->params[0], sid, &err) < 0) {
		json_decref(body);
		http_reply_error(resp, &err);
		return;
	}
	json_decref(body);
	reply_or_error(resp, 200, vms_get_json(req->userdata, req->params[0], &err), &err);
}

const struct http_route snapshot_routes[] = {
	{ "GET", "/v1/vms/{id}/snapshots", list_snapshots, 0, 0, NULL },
	{ "POST", "/v1/vms/{id}/snapshots", create_snapshot, 0, 4096, NULL },
	{ "GET", "/v1/vms/{id}/snapshots/{sid}", get_snapshot, 0, 0, "nested" },
	{ "DELETE", "/v1/vms/{id}/snapshots/{sid}", delete_snapshot, 0, 0, NULL },
	{ "POST", "/v1/vms/{id}/revert", revert_vm, 0, 4096, NULL },
	{ "GET", "/v1/snapshots/{sid}", get_snapshot, 0, 0, NULL },
};
const size_t snapshot_routes_count = sizeof snapshot_routes / sizeof snapshot_routes[0];
