/* VM lifecycle beyond start/stop (vms.c): graceful shutdown with a
 * deadline, changing vCPUs and memory of a stopped VM, and the memory
 * check that create, start and PATCH make against the host's free
 * memory. Every operation claims its VM (claims.h); no lock is held
 * across an agent call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/claims.h"
#include "manager/services/events.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/hosts_internal.h"
#include "manager/services/reconciler.h"
#include "manager/services/vms.h"
#include "manager/services/vms_internal.h"

#define LOCAL_BEAT_MS 3000
/* The agent answers a shutdown once the guest is off or was powered off
 * at the deadline: give it that long and this much more. */
#define SHUTDOWN_SLACK_MS 30000

int
vms_check_memory(struct manager *m, const char *host_id, unsigned memory_mib,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	long long best = -1;
	const char *best_name = NULL;

	/* The local agent answers at once: ask it now for a fresh figure;
	 * other hosts' figures come from their heartbeat. */
	if (!host_id || !strcmp(host_id, HOST_LOCAL_ID)) {
		struct nq_error ignore = { 0 };
		(void)hosts_heartbeat_one(m, HOST_LOCAL_ID, LOCAL_BEAT_MS, &ignore);
	}
	if (db_query(m->db,
		    "SELECT name, memory_mib, memory_free_mib FROM hosts"
		    " WHERE ($1 = '' OR id = $1) AND memory_mib > 0",
		    1, (const char *[]){ host_id ? host_id : "" }, &rows) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (rows.nrows == 0)
		return 0; /* no host reported its memory: nothing to check */
	for (unsigned i = 0; i < rows.nrows; i++) {
		long long fr = strtoll(db_rows_get(&rows, i, 2) ?: "0", NULL, 10);
		if (fr > best) {
			best = fr;
			best_name = db_rows_get(&rows, i, 0);
		}
	}
	if ((long long)memory_mib <= best)
		return 0;
	if (host_id)
		return nq_error_setr(err, -ENOMEM, "insufficient_memory", "memory_mib",
			"memory_mib %u is more than host %s has free: %lld MiB",
			memory_mib, best_name ?: host_id, best);
	return nq_error_setr(err, -ENOMEM, "insufficient_memory", "memory_mib",
		"memory_mib %u is more than any host has free: at most %lld MiB (host %s)",
		memory_mib, best, best_name ?: "?");
}

/* "graceful" or "forced" from the agent's VM reply (last_exit.shutdown). */
static const char *
shutdown_how(json_t *vm)
{
	const char *how = json_string_value(
		json_object_get(json_object_get(vm, "last_exit"), "shutdown"));

	return how ? how : "graceful";
}

/* The agent's last_exit of the VM (compact JSON, as the reconciler stores
 * it) into the row with state stopped. */
static void
record_stopped(struct manager *m, const char *id, json_t *agent_vm)
{
	/* The reconciler's form, so it sees the same exit and keeps it. */
	char *text = reconcile_exit_text(json_object_get(agent_vm, "last_exit"));

	vms_set_state(m, id, "stopped", NULL);
	if (text && *text &&
		db_exec(m->db, "UPDATE vms SET last_exit = $2 WHERE id = $1", 2,
			(const char *[]){ id, text }, NULL) < 0)
		log_warn("cannot record the VM's last exit id=%s", id);
	free(text);
}

static int
agent_shutdown(struct manager *m, const struct vm_row *vm, unsigned timeout_s, char *how,
	size_t howsz, struct nq_error *err)
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	char path[128], body[64];
	int r;

	snprintf(path, sizeof path, "/v1/vms/%s/shutdown", vm->id);
	snprintf(body, sizeof body, "{\"timeout_seconds\": %u}", timeout_s);
	if ((r = vms_env(m, vm, &env, err)) < 0)
		return r;
	r = agent_call(env.agent, "POST", path, body, strlen(body),
		(long)timeout_s * 1000 + SHUTDOWN_SLACK_MS, &rep, err);
	if (r >= 0) {
		snprintf(how, howsz, "%s", shutdown_how(rep.json));
		record_stopped(m, vm->id, rep.json);
	}
	if (r < 0 && rep.status == 404) { /* the agent has no such VM: it is off */
		memset(err, 0, sizeof *err);
		snprintf(how, howsz, "not running");
		vms_set_state(m, vm->id, "stopped", NULL);
		r = 0;
	}
	agent_reply_release(&rep);
	return r;
}

static int
shutdown_claimed(struct manager *m, const char *id, unsigned timeout_s,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct vm_row vm;
	char how[32] = "", cause[96];
	int r;

	r = vms_fetch(m, id, &rows, &vm);
	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no VM with id %.64s", id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (!strcmp(vm.state, "stopped"))
		return 0;
	if (strcmp(vm.state, "running") != 0)
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"VM %s is %s; only a running VM can be shut down", id, vm.state);
	vms_set_state(m, id, "stopping", NULL);
	r = agent_shutdown(m, &vm, timeout_s, how, sizeof how, err);
	if (r < 0) {
		vms_set_state(m, id, "running", NULL);
		events_record(m, "api", "vm.shutdown", "vm", id, vm.host_id, "failed",
			err->message);
		return r;
	}
	snprintf(cause, sizeof cause, "%s (deadline %u s)", how, timeout_s);
	log_info("VM shut down id=%s how=%s", id, how);
	events_record(m, "api", "vm.shutdown", "vm", id, vm.has_host ? vm.host_id : NULL,
		"ok", cause);
	return 0;
}

int
vms_shutdown(struct manager *m, const char *id, unsigned timeout_s, struct nq_error *err)
{
	char key[CLAIM_KEY_MAX];
	int r;

	claim_key(key, "vm", id);
	r = claim_try(key, "the VM", err);
	if (r < 0)
		return r;
	r = shutdown_claimed(m, id, timeout_s, err);
	claim_release(key);
	return r;
}

/* The agent keeps the VM's size in its record: forget it there (the VM is
 * stopped), and the next start describes the VM afresh with the new one. */
static int
agent_forget(struct manager *m, const struct vm_row *vm, struct nq_error *err)
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	char path[128];
	int r;

	snprintf(path, sizeof path, "/v1/vms/%s", vm->id);
	if ((r = vms_env(m, vm, &env, err)) < 0)
		return r;
	r = agent_call(env.agent, "DELETE", path, NULL, 0, VM_CALL_TIMEOUT_MS, &rep, err);
	if (r < 0 && rep.status == 404) {
		memset(err, 0, sizeof *err);
		r = 0;
	}
	agent_reply_release(&rep);
	return r;
}

static int
resize_claimed(struct manager *m, const char *id, const struct vm_resize *z,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct vm_row vm;
	char vc[16], mem[16], cause[96];
	int r;

	r = vms_fetch(m, id, &rows, &vm);
	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no VM with id %.64s", id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (strcmp(vm.state, "stopped") != 0 && strcmp(vm.state, "error") != 0)
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"VM %s is %s: stop it before changing its vCPUs or memory", id,
			vm.state);
	if (z->memory_mib && z->memory_mib > vm.memory_mib &&
		(r = vms_check_memory(m, vm.has_host ? vm.host_id : NULL, z->memory_mib,
			 err)) < 0)
		return r;
	if ((r = agent_forget(m, &vm, err)) < 0)
		return r;
	snprintf(vc, sizeof vc, "%u", z->vcpus ? z->vcpus : vm.vcpus);
	snprintf(mem, sizeof mem, "%u", z->memory_mib ? z->memory_mib : vm.memory_mib);
	r = db_exec(m->db, "UPDATE vms SET vcpus = $2, memory_mib = $3 WHERE id = $1", 3,
		(const char *[]){ id, vc, mem }, NULL);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	snprintf(cause, sizeof cause, "vcpus %u -> %s, memory_mib %u -> %s", vm.vcpus, vc,
		vm.memory_mib, mem);
	log_info("VM resized id=%s %s", id, cause);
	events_record(m, "api", "vm.updated", "vm", id, vm.has_host ? vm.host_id : NULL,
		"ok", cause);
	return 0;
}

int
vms_resize(struct manager *m, const char *id, const struct vm_resize *z,
	struct nq_error *err)
{
	char key[CLAIM_KEY_MAX];
	int r;

	if (!z->vcpus && !z->memory_mib)
		return 0;
	claim_key(key, "vm", id);
	r = claim_try(key, "the VM", err);
	if (r < 0)
		return r;
	r = resize_claimed(m, id, z, err);
	claim_release(key);
	return r;
}
