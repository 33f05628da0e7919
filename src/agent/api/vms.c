/* The agent's VM routes (DESIGN.md §6, /v1/vms/): strict bodies, ids
 * validated as UUIDs, kernel and initrd as image-dir names; vms.c builds
 * every path from those. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/http_server.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/validate.h"
#include "agent/api/api.h"
#include "agent/vmm/vmm.h"
#include "agent/vmm/vms.h"

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
	c->backend_kind = storage_kind_find(kind);
	if (!c->backend_kind)
		return nq_error_set(err, "invalid_field", "backend_kind",
			"backend_kind must be %s", storage_kind_names());
	if ((r = c->backend_kind->check_backend_id("backend_id", bid, c->backend_id,
		     err)) < 0 ||
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
		return nq_error_set(err, "invalid_field", "start",
			"start must be a boolean");
	c->start = !start || json_is_true(start);
	snprintf(c->kernel, sizeof c->kernel, "%s", kernel);
	snprintf(c->initrd, sizeof c->initrd, "%s", initrd ? initrd : "");
	snprintf(c->boot_args, sizeof c->boot_args, "%s", args ? args : "");
	snprintf(c->hypervisor, sizeof c->hypervisor, "%s", hv ? hv : "");
	return 0;
}

/* POST /v1/vms {id, backend_kind?, backend_id, volume_id, vcpus, memory_mib, kernel,
 * initrd?, boot_args?, hypervisor?, start?} */
void
api_post_vm(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "id", "backend_kind", "backend_id",
		"volume_id", "vcpus", "memory_mib", "kernel", "initrd", "boot_args",
		"hypervisor", "start", NULL };
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

typedef int (*vm_fn)(struct agent *a, const char *id, json_t **ret, struct nq_error *err);

void
api_vm_action(struct http_request *req, struct http_response *resp)
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

void
api_delete_vm(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	int r = validate_uuid("id", req->params[0], id, &err);

	if (r >= 0)
		r = vms_delete(AGENT(req), id, &err);
	api_reply_done(resp, r, &err);
}

#define VMS_WAIT_MAX 30

/* GET /v1/vms[?wait=SECONDS&since=GEN]: the VM list with its generation
 * in X-Generation. With wait and since, a client that has seen since
 * gets the answer when the generation moves, or after SECONDS (max 30):
 * the manager learns of a VM exit within the reaper's interval instead
 * of its next poll. */
void
api_list_vms(struct http_request *req, struct http_response *resp)
{
	const char *w = http_query(req, "wait"), *s = http_query(req, "since");
	unsigned long long since = 0, gen;
	unsigned long wait = 0;
	char *end = NULL;

	if (w) {
		errno = 0;
		wait = strtoul(w, &end, 10);
		if (!*w || *end || errno || w[0] == '-' || wait > VMS_WAIT_MAX) {
			http_reply_errorf(resp, "invalid_field", "wait",
				"wait must be a number of seconds from 0 to %d",
				VMS_WAIT_MAX);
			return;
		}
	}
	if (s) {
		errno = 0;
		since = strtoull(s, &end, 10);
		if (!*s || *end || errno || s[0] == '-') {
			http_reply_errorf(resp, "invalid_field", "since",
				"since must be a generation from X-Generation");
			return;
		}
	}
	gen = vms_generation_wait(since, s ? (unsigned)wait * 1000 : 0);
	http_reply_json(resp, 200, vms_list(AGENT(req)));
	if (asprintf(&resp->extra_headers, "X-Generation: %llu\n", gen) < 0)
		resp->extra_headers = NULL;
}

/* POST /v1/vms/{id}/shutdown {timeout_seconds?}: the guest is asked to
 * power off and given timeout_seconds (default 60) before a power-off. */
void
api_vm_shutdown(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "timeout_seconds", NULL };
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	unsigned timeout = VM_SHUTDOWN_TIMEOUT_DEFAULT;
	json_t *body = NULL, *vm;

	if (validate_uuid("id", req->params[0], id, &err) < 0 ||
		(req->body_len && http_parse_object(req, keys, &body, &err) < 0) ||
		(json_object_get(body, "timeout_seconds") &&
			json_req_uint(body, "timeout_seconds", 1, VM_SHUTDOWN_TIMEOUT_MAX,
				&timeout, &err) < 0) ||
		vms_shutdown(AGENT(req), id, timeout, &vm, &err) < 0) {
		json_decref(body);
		http_reply_error(resp, &err);
		return;
	}
	json_decref(body);
	http_reply_json(resp, 200, vm);
}
