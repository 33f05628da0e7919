/* The agent's whole privileged surface: one static route table, on one
 * page. What each handler accepts is in docs/agent-api.md; the handlers
 * are in the files api.h names. The volume routes are shared by every
 * storage kind: their route data is the kind (storage/kind.h). */
#include "common/http_server.h"
#include "common/json_util.h"
#include "common/macro.h"
#include "common/validate.h"
#include "agent/api/api.h"
#include "agent/mounts/mounts.h"
#include "agent/storage/localdirs.h"
#include "agent/vmm/vms.h"

#define SMB (&storage_kind_smb)
#define LOCAL (&storage_kind_localfile)
#define VM_FN(fn) ((const void *)(fn))
#define LIST(fn) ((const void *)(list_fn)(fn))

static void
healthz(struct http_request *req, struct http_response *resp)
{
	(void)req;
	http_reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static const struct http_route routes[] = {
	/* method, pattern, handler, flags, body cap, route data */
	{ "PUT", "/v1/storage/smb/credentials/{backend_id}", api_put_credentials,
		ROUTE_SENSITIVE, 8192, NULL },
	{ "DELETE", "/v1/storage/smb/credentials/{backend_id}", api_delete_credentials, 0,
		0, NULL },
	{ "POST", "/v1/storage/smb/mounts", api_post_mount, 0, 16384, NULL },
	{ "GET", "/v1/storage/smb/mounts", api_list, 0, 0, LIST(mounts_list_json) },
	{ "DELETE", "/v1/storage/smb/mounts/{backend_id}", api_delete_mount, 0, 0, NULL },
	{ "GET", "/v1/storage/smb/mounts/{backend_id}/capacity", api_get_capacity, 0, 0,
		SMB },
	{ "GET", "/v1/storage/smb/mounts/{backend_id}/cache", api_get_cache, 0, 0, SMB },
	{ "DELETE", "/v1/storage/smb/mounts/{backend_id}/cache", api_delete_cache, 0, 0,
		SMB },
	{ "DELETE", "/v1/storage/smb/mounts/{backend_id}/cache/{hash}", api_delete_cache,
		0, 0, SMB },
	{ "POST", "/v1/storage/smb/volumes", api_post_volume, 0, 4096, SMB },
	{ "GET", "/v1/storage/smb/volumes/{backend_id}", api_list_volumes, 0, 0, SMB },
	{ "DELETE", "/v1/storage/smb/volumes/{backend_id}/{volume_id}", api_delete_volume,
		0, 0, SMB },
	{ "POST", "/v1/storage/smb/volumes/{backend_id}/{volume_id}/copy", api_copy_volume,
		0, 1024, SMB },
	{ "POST", "/v1/storage/smb/volumes/{backend_id}/{volume_id}/revert",
		api_revert_volume, 0, 1024, SMB },

	{ "PUT", "/v1/storage/localfile/backends/{backend_id}", api_put_local_backend, 0,
		8192, NULL },
	{ "GET", "/v1/storage/localfile/backends", api_list, 0, 0,
		LIST(localdirs_list_json) },
	{ "DELETE", "/v1/storage/localfile/backends/{backend_id}",
		api_delete_local_backend, 0, 0, NULL },
	{ "GET", "/v1/storage/localfile/backends/{backend_id}/capacity", api_get_capacity,
		0, 0, LOCAL },
	{ "POST", "/v1/storage/localfile/volumes", api_post_volume, 0, 4096, LOCAL },
	{ "GET", "/v1/storage/localfile/volumes/{backend_id}", api_list_volumes, 0, 0,
		LOCAL },
	{ "DELETE", "/v1/storage/localfile/volumes/{backend_id}/{volume_id}",
		api_delete_volume, 0, 0, LOCAL },
	{ "POST", "/v1/storage/localfile/volumes/{backend_id}/{volume_id}/copy",
		api_copy_volume, 0, 1024, LOCAL },
	{ "POST", "/v1/storage/localfile/volumes/{backend_id}/{volume_id}/revert",
		api_revert_volume, 0, 1024, LOCAL },

	{ "GET", "/v1/images", api_list_images, 0, 0, NULL },

	{ "POST", "/v1/vms", api_post_vm, 0, 4096, NULL },
	{ "GET", "/v1/vms", api_list_vms, 0, 0, NULL },
	{ "GET", "/v1/vms/{id}", api_get_vm, 0, 0, NULL },
	{ "GET", "/v1/vms/{id}/console", api_console_tail, 0, 0, NULL },
	{ "GET", "/v1/vms/{id}/console/stream", api_console_stream, 0, 0, NULL },
	{ "POST", "/v1/vms/{id}/console/input", api_console_input, ROUTE_RAW_BODY, 4096,
		NULL },
	{ "POST", "/v1/vms/{id}/start", api_vm_action, 0, 0, VM_FN(vms_start) },
	{ "POST", "/v1/vms/{id}/stop", api_vm_action, 0, 0, VM_FN(vms_stop) },
	{ "POST", "/v1/vms/{id}/restart", api_vm_action, 0, 0, VM_FN(vms_restart) },
	{ "POST", "/v1/vms/{id}/poweroff", api_vm_action, 0, 0, VM_FN(vms_poweroff) },
	{ "POST", "/v1/vms/{id}/shutdown", api_vm_shutdown, 0, 1024, NULL },
	{ "DELETE", "/v1/vms/{id}", api_delete_vm, 0, 0, NULL },
	{ "POST", "/v1/vms/{id}/snapshot", api_vm_snapshot, 0, 1024, NULL },
	{ "GET", "/v1/host", api_get_host, 0, 0, NULL },

	{ "GET", "/healthz", healthz, ROUTE_NO_AUTH, 0, NULL },
};

const struct http_route *
agent_routes(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(routes);
	return routes;
}

void
api_list(struct http_request *req, struct http_response *resp)
{
	list_fn fn = (list_fn)req->route_data;

	http_reply_json(resp, 200, fn(AGENT(req)));
}

void
api_reply_done(struct http_response *resp, int r, const struct nq_error *err)
{
	if (r < 0)
		http_reply_error(resp, err);
	else
		http_reply_empty(resp, 204);
}

bool
api_param_uuid(struct http_request *req, unsigned i, const char *field,
	char out[NQ_UUID_LEN + 1], struct http_response *resp)
{
	struct nq_error err = { 0 };

	if (validate_uuid(field, req->params[i], out, &err) < 0) {
		http_reply_error(resp, &err);
		return false;
	}
	return true;
}
