/* The agent's VM routes (DESIGN.md §6, /v1/vms/): strict bodies, ids
 * validated as UUIDs, kernel and initrd as image-dir names; vms.c builds
 * every path from those. */
#include <string.h>
#include <unistd.h>

#include "common/http_server.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/validate.h"
#include "agent/agent.h"
#include "agent/vmm/vmm.h"
#include "agent/vmm/vms.h"

#define AGENT(req) ((struct agent *)(req)->userdata)

/* Kernel command line extras: a conservative character set, no quotes,
 * no control characters. */
static int
validate_boot_args(const char *v, struct nq_error *err)
{
	if (strlen(v) > VM_BOOT_ARGS_MAX)
		return nq_error_set(err, "invalid_field", "boot_args",
			"boot_args must be at most %d characters", VM_BOOT_ARGS_MAX);
	if (v[strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"0123456789 =._,:/-")])
		return nq_error_set(err, "invalid_field", "boot_args",
			"boot_args may hold only letters, digits, spaces and =._,:/-");
	return 0;
}

static int
parse_create(json_t *body, struct vm_create *c, struct nq_error *err)
{
	const char *id, *bid, *vid, *kernel, *initrd, *args, *hv, *kind;
	json_t *start = json_object_get(body, "start");
	int r;

	if ((r = json_req_string(body, "id", &id, err)) < 0 ||
	    (r = json_req_string(body, "backend_id", &bid, err)) < 0 ||
	    (r = json_req_string(body, "volume_id", &vid, err)) < 0 ||
	    (r = json_req_string(body, "kernel", &kernel, err)) < 0 ||
	    (r = json_get_string(body, "initrd", &initrd, err)) < 0 ||
	    (r = json_get_string(body, "boot_args", &args, err)) < 0 ||
	    (r = json_get_string(body, "hypervisor", &hv, err)) < 0 ||
	    (r = json_get_string(body, "backend_kind", &kind, err)) < 0 ||
	    (r = validate_uuid("id", id, c->id, err)) < 0)
		return r;
	if (volume_kind_parse(kind, &c->backend_kind) < 0)
		return nq_error_set(err, "invalid_field", "backend_kind",
			"backend_kind must be smb or localfile");
	if ((r = c->backend_kind == VOLUME_SMB
			 ? validate_uuid("backend_id", bid, c->backend_id, err)
			 : validate_backend_id("backend_id", bid, c->backend_id, err)) < 0 ||
	    (r = validate_uuid("volume_id", vid, c->volume_id, err)) < 0 ||
	    (r = validate_image_name("kernel", kernel, err)) < 0 ||
	    (initrd && *initrd && (r = validate_image_name("initrd", initrd, err)) < 0) ||
	    (args && (r = validate_boot_args(args, err)) < 0) ||
	    (r = json_req_uint(body, "vcpus", 1, 32, &c->vcpus, err)) < 0 ||
	    (r = json_req_uint(body, "memory_mib", 64, 262144, &c->memory_mib, err)) < 0)
		return r;
	if (hv && *hv && !vmm_find(hv))
		return nq_error_set(err, "invalid_field", "hypervisor",
			"hypervisor must be firecracker or qemu");
	if (start && !json_is_boolean(start))
		return nq_error_set(err, "invalid_field", "start", "start must be a boolean");
	c->start = !start || json_is_true(start);
	snprintf(c->kernel, sizeof c->kernel, "%s", kernel);
	snprintf(c->initrd, sizeof c->initrd, "%s", initrd ? initrd : "");
	snprintf(c->boot_args, sizeof c->boot_args, "%s", args ? args : "");
	snprintf(c->hypervisor, sizeof c->hypervisor, "%s", hv ? hv : "");
	return 0;
}

/* POST /v1/vms {id, backend_kind?, backend_id, volume_id, vcpus, memory_mib, kernel,
 * initrd?, boot_args?, hypervisor?, start?} */
static void
post_vm(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "id", "backend_kind", "backend_id", "volume_id", "vcpus",
		"memory_mib", "kernel", "initrd", "boot_args", "hypervisor", "start", NULL };
	struct vm_create c = { 0 };
	struct nq_error err = { 0 };
	json_t *body = NULL, *vm;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
	    parse_create(body, &c, &err) < 0 ||
	    vms_create(AGENT(req), &c, &vm, &err) < 0) {
		if (!nq_error_is_set(&err))
			nq_error_set(&err, "internal_error", NULL, "cannot create the VM");
		log_info("VM create refused id=%s code=%s", c.id, err.code);
		json_decref(body);
		http_reply_error(resp, &err);
		return;
	}
	json_decref(body);
	http_reply_json(resp, 201, vm);
}

typedef int (*vm_fn)(struct agent *a, const char *id, json_t **ret,
	struct nq_error *err);

static void
vm_action(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	vm_fn fn = (vm_fn)req->route_data;
	json_t *vm;

	if (validate_uuid("id", req->params[0], id, &err) < 0 ||
	    fn(AGENT(req), id, &vm, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	http_reply_json(resp, 200, vm);
}

static void
delete_vm(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };

	if (validate_uuid("id", req->params[0], id, &err) < 0 ||
	    vms_delete(AGENT(req), id, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	http_reply_empty(resp, 204);
}

static void
list_vms(struct http_request *req, struct http_response *resp)
{
	http_reply_json(resp, 200, vms_list(AGENT(req)));
}

/* GET /v1/host: what this agent offers, for the manager's host record. */
static void
get_host(struct http_request *req, struct http_response *resp)
{
	struct agent *a = AGENT(req);
	json_t *hv = json_array();

	if (access(a->cfg.firecracker_path, X_OK) == 0)
		json_array_append_new(hv, json_string("firecracker"));
	if (access(a->cfg.qemu_path, X_OK) == 0)
		json_array_append_new(hv, json_string("qemu"));
	http_reply_json(resp, 200, json_pack("{s:[s, s], s:o, s:s}",
		"backend_kinds", "smb", "localfile", "hypervisors", hv,
		"default_hypervisor", vms_default_hypervisor(a)));
}

static const struct http_route routes[] = {
	{ "POST", "/v1/vms", post_vm, 0, 4096, NULL },
	{ "GET", "/v1/vms", list_vms, 0, 0, NULL },
	{ "GET", "/v1/vms/{id}", vm_action, 0, 0, (const void *)vms_get },
	{ "POST", "/v1/vms/{id}/start", vm_action, 0, 0, (const void *)vms_start },
	{ "POST", "/v1/vms/{id}/stop", vm_action, 0, 0, (const void *)vms_stop },
	{ "POST", "/v1/vms/{id}/restart", vm_action, 0, 0,
	  (const void *)vms_restart },
	{ "DELETE", "/v1/vms/{id}", delete_vm, 0, 0, NULL },
	{ "GET", "/v1/host", get_host, 0, 0, NULL },
};

const struct http_route *
agent_vm_routes(size_t *ret_n)
{
	*ret_n = ARRAY_SIZE(routes);
	return routes;
}
