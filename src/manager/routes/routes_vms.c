/* /v1/vms (DESIGN.md §5): list, create (201 with the VM in state
 * "provisioning"; poll it until "running" or "error"), start, stop,
 * restart, delete. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager.h"
#include "manager/routes/query.h"
#include "manager/routes/routes.h"
#include "common/json_util.h"
#include "common/validate.h"
#include "manager/services/vms.h"

static void
reply_vm(struct http_request *req, struct http_response *resp, int status, const char *id)
{
	struct nq_error err = { 0 };
	json_t *vm = vms_get_json(req->userdata, id, &err);

	if (!vm)
		http_reply_error(resp, &err);
	else
		http_reply_json(resp, status, vm);
}

/* States a VM row can be in (the state filter accepts only these). */
static const char *const vm_states[] = { "provisioning", "running", "stopping", "stopped",
	"error", "migrating", NULL };

static int
parse_list_query(struct http_request *req, struct vm_list_query *q, struct nq_error *err)
{
	unsigned long long limit;
	size_t i;

	if (query_uint(req, "limit", 1, VMS_LIMIT_MAX, VMS_LIMIT_DEFAULT, &limit, err) < 0 ||
		query_uint(req, "offset", 0, 1000000000ULL, 0, &q->offset, err) < 0 ||
		query_word(req, "host_id", 64, &q->host_id, err) < 0 ||
		query_word(req, "state", 32, &q->state, err) < 0)
		return -EINVAL;
	q->limit = (unsigned)limit;
	for (i = 0; q->state && vm_states[i] && strcmp(vm_states[i], q->state); i++)
		;
	if (q->state && !vm_states[i])
		return nq_error_setr(err, -EINVAL, "invalid_field", "state",
			"state must be provisioning, running, stopping, stopped, error or"
			" migrating");
	return 0;
}

/* A page from the database; the total in X-Total-Count. The body stays
 * a plain JSON array (compatible with clients of the unpaged list). */
static void
list_vms(struct http_request *req, struct http_response *resp)
{
	struct vm_list_query q = { 0 };
	struct nq_error err = { 0 };
	long long total = 0;
	char *text;

	if (parse_list_query(req, &q, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	text = vms_list_page(req->userdata, &q, &total);
	if (!text) {
		http_reply_errorf(resp, "internal_error", NULL, "database error");
		return;
	}
	/* Serialised by the service already (no json_t round trip). */
	free(resp->body);
	resp->status = 200;
	resp->body = text;
	resp->body_len = strlen(text);
	resp->content_type = "application/json";
	if (asprintf(&resp->extra_headers, "X-Total-Count: %lld\n", total) < 0)
		resp->extra_headers = NULL;
}

/* image_id, or source_snapshot_id (a VM made from a snapshot): exactly
 * one of them; both is 422 naming source_snapshot_id. */
static int
parse_source(json_t *body, struct vm_new *v, struct nq_error *err)
{
	int r;

	if ((r = json_get_string(body, "image_id", &v->image_id, err)) < 0 ||
		(r = json_get_string(body, "source_snapshot_id", &v->source_snapshot_id,
			 err)) < 0)
		return r;
	if (v->image_id && v->source_snapshot_id)
		return nq_error_setr(err, -EINVAL, "invalid_field", "source_snapshot_id",
			"source_snapshot_id and image_id are mutually exclusive: a VM made "
			"from a snapshot boots the image of the snapshot's VM");
	if (v->source_snapshot_id &&
		(!*v->source_snapshot_id || strlen(v->source_snapshot_id) > AUTH_UUID_LEN))
		return nq_error_setr(err, -EINVAL, "invalid_field", "source_snapshot_id",
			"source_snapshot_id must be a snapshot id");
	if (!v->image_id && !v->source_snapshot_id)
		return nq_error_setr(err, -EINVAL, "missing_field", "image_id",
			"image_id is required (or source_snapshot_id)");
	return 0;
}

static void
create_vm(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "name", "vcpus", "memory_mib", "image_id",
		"storage_backend_id", "host_id", "ha", "source_snapshot_id", NULL };
	struct nq_error err = { 0 };
	struct vm_new v = { 0 };
	char id[AUTH_UUID_LEN + 1];
	json_t *body = NULL;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "name", &v.name, &err) < 0 ||
		parse_source(body, &v, &err) < 0 ||
		json_get_string(body, "storage_backend_id", &v.backend_id, &err) < 0 ||
		json_get_string(body, "host_id", &v.host_id, &err) < 0 ||
		validate_name("name", v.name, &err) < 0 ||
		(!v.source_snapshot_id &&
			validate_image_name("image_id", v.image_id, &err) < 0) ||
		json_req_uint(body, "vcpus", 1, 32, &v.vcpus, &err) < 0 ||
		json_req_uint(body, "memory_mib", 64, 262144, &v.memory_mib, &err) < 0)
		goto fail;
	if (json_object_get(body, "ha") && !json_is_boolean(json_object_get(body, "ha"))) {
		nq_error_set(&err, "invalid_field", "ha", "ha must be a boolean");
		goto fail;
	}
	v.ha = json_is_true(json_object_get(body, "ha"));
	if (v.backend_id && (!*v.backend_id || strlen(v.backend_id) > BACKEND_ID_MAX)) {
		nq_error_set(&err, "invalid_field", "storage_backend_id",
			"storage_backend_id must be a backend id");
		goto fail;
	}
	if (vms_create(req->userdata, &v, id, &err) < 0)
		goto fail;
	json_decref(body);
	reply_vm(req, resp, 201, id);
	return;
fail:
	json_decref(body);
	http_reply_error(resp, &err);
}

static void
get_vm(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };
	json_t *vm = vms_detail_json(req->userdata, req->params[0], &err);

	if (!vm)
		http_reply_error(resp, &err);
	else
		http_reply_json(resp, 200, vm);
}

static void
vm_action(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };
	enum vm_action act = (enum vm_action)(uintptr_t)req->route_data;

	if (strlen(req->params[0]) > AUTH_UUID_LEN) {
		http_reply_errorf(resp, "not_found", NULL, "no such VM");
		return;
	}
	if (vms_action(req->userdata, req->params[0], act, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	reply_vm(req, resp, 200, req->params[0]);
}

static void
migrate_vm(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "host_id", NULL };
	struct nq_error err = { 0 };
	const char *host_id = NULL;
	json_t *body = NULL;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "host_id", &host_id, &err) < 0 ||
		vms_migrate(req->userdata, req->params[0], host_id, &err) < 0) {
		json_decref(body);
		http_reply_error(resp, &err);
		return;
	}
	json_decref(body);
	reply_vm(req, resp, 200, req->params[0]);
}

/* POST /v1/vms/{id}/shutdown {timeout_seconds?}: the guest is asked to
 * power off, and powered off when it has not by the deadline. */
static void
shutdown_vm(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "timeout_seconds", NULL };
	struct nq_error err = { 0 };
	unsigned timeout = VM_SHUTDOWN_TIMEOUT_DEFAULT;
	json_t *body = NULL;

	if (strlen(req->params[0]) > AUTH_UUID_LEN) {
		http_reply_errorf(resp, "not_found", NULL, "no such VM");
		return;
	}
	if ((req->body_len && http_parse_object(req, keys, &body, &err) < 0) ||
		(json_object_get(body, "timeout_seconds") &&
			json_req_uint(body, "timeout_seconds", 1, VM_SHUTDOWN_TIMEOUT_MAX,
				&timeout, &err) < 0) ||
		vms_shutdown(req->userdata, req->params[0], timeout, &err) < 0) {
		json_decref(body);
		http_reply_error(resp, &err);
		return;
	}
	json_decref(body);
	reply_vm(req, resp, 200, req->params[0]);
}

/* The optional {vcpus, memory_mib} of a PATCH (0: absent), the same
 * bounds as create. */
static int
parse_resize(json_t *body, struct vm_resize *z, struct nq_error *err)
{
	if (json_object_get(body, "vcpus") &&
		json_req_uint(body, "vcpus", 1, 32, &z->vcpus, err) < 0)
		return -EINVAL;
	if (json_object_get(body, "memory_mib") &&
		json_req_uint(body, "memory_mib", 64, 262144, &z->memory_mib, err) < 0)
		return -EINVAL;
	return 0;
}

/* PATCH /v1/vms/{id} {ha?, vcpus?, memory_mib?}: vCPUs and memory only
 * while the VM is stopped (vms_resize). */
static void
patch_vm(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "ha", "vcpus", "memory_mib", NULL };
	struct nq_error err = { 0 };
	struct vm_resize z = { 0 };
	json_t *body = NULL, *ha;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
		parse_resize(body, &z, &err) < 0)
		goto fail;
	ha = json_object_get(body, "ha");
	if ((ha && !json_is_boolean(ha)) || (!ha && !z.vcpus && !z.memory_mib)) {
		nq_error_set(&err, ha ? "invalid_field" : "missing_field", "ha",
			ha ? "ha must be a boolean"
			   : "give ha, vcpus or memory_mib to change");
		goto fail;
	}
	if (strlen(req->params[0]) > AUTH_UUID_LEN) {
		nq_error_set(&err, "not_found", NULL, "no such VM");
		goto fail;
	}
	if (vms_resize(req->userdata, req->params[0], &z, &err) < 0 ||
		(ha && vms_set_ha(req->userdata, req->params[0], json_is_true(ha),
			       &err) < 0))
		goto fail;
	json_decref(body);
	reply_vm(req, resp, 200, req->params[0]);
	return;
fail:
	json_decref(body);
	http_reply_error(resp, &err);
}

static void
delete_vm(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };

	if (vms_delete(req->userdata, req->params[0], &err) < 0)
		http_reply_error(resp, &err);
	else
		http_reply_empty(resp, 204);
}

const struct http_route vm_routes[] = {
	{ "GET", "/v1/vms", list_vms, 0, 0, NULL },
	{ "POST", "/v1/vms", create_vm, 0, 4096, NULL },
	{ "GET", "/v1/vms/{id}", get_vm, 0, 0, NULL },
	{ "PATCH", "/v1/vms/{id}", patch_vm, 0, 4096, NULL },
	{ "POST", "/v1/vms/{id}/migrate", migrate_vm, 0, 0, NULL },
	{ "POST", "/v1/vms/{id}/start", vm_action, 0, 0, (const void *)(uintptr_t)VM_START },
	{ "POST", "/v1/vms/{id}/stop", vm_action, 0, 0, (const void *)(uintptr_t)VM_STOP },
	{ "POST", "/v1/vms/{id}/restart", vm_action, 0, 0,
		(const void *)(uintptr_t)VM_RESTART },
	{ "POST", "/v1/vms/{id}/shutdown", shutdown_vm, 0, 1024, NULL },
	{ "DELETE", "/v1/vms/{id}", delete_vm, 0, 0, NULL },
};
const size_t vm_routes_count = sizeof vm_routes / sizeof vm_routes[0];
