/* Cold migration (POST /v1/vms/{id}/migrate): under the VM's claim, the VM
 * is stopped and forgotten on its host A, described (and started when it
 * ran) on host B with the same id and volume, and its row moves to B. The
 * disk is the file on the share: nothing is copied. A localfile backend
 * is refused. The intent (vms.migrate_to) is recorded before A is
 * touched, so a manager that dies midway leaves a row the recovery pass
 * (vms_migrate_recover) settles on exactly one host. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/debug_gate.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/events.h"
#include "manager/services/claims.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/vms.h"
#include "manager/services/vms_internal.h"

/* POST path on env's agent; 404 (the agent does not know the VM) is fine. */
static int
call_ok_404(const struct backend_env *env, const char *method, const char *path,
	struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	int r = agent_call(env->agent, method, path, NULL, 0, VM_CALL_TIMEOUT_MS, &rep,
		err);

	if (r < 0 && rep.status == 404) {
		memset(err, 0, sizeof *err);
		r = 0;
	}
	agent_reply_release(&rep);
	return r;
}

/* Stop (when running) and forget the VM on host src. */
static int
leave(struct manager *m, const struct vm_row *vm, const char *src, bool running,
	struct nq_error *err)
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	char path[128];
	int r;

	if ((r = hosts_env(m, src, &env, err)) < 0)
		return r;
	snprintf(path, sizeof path, "/v1/vms/%s/stop", vm->id);
	if (running && (r = call_ok_404(&env, "POST", path, err)) < 0)
		return r;
	snprintf(path, sizeof path, "/v1/vms/%s", vm->id);
	return call_ok_404(&env, "DELETE", path, err);
}

/* Describe the VM on host hid, started when start. */
static int
arrive(struct manager *m, const struct vm_row *vm, const char *vid, const char *hid,
	bool start, struct nq_error *err)
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	int r;

	if ((r = hosts_env(m, hid, &env, err)) < 0)
		return r;
	return vms_agent_describe(m, &env, vm, vid, start, err);
}

/* The row after the move (or the stay): host, state, intent cleared. */
static int
settle(struct manager *m, const char *id, const char *hid, const char *state,
	const char *error)
{
	char now[24];
	const char *p[] = { id, hid, state, error, now };

	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	return db_exec(m->db,
		"UPDATE vms SET host_id = $2, state = $3, error = $4, updated_at = $5,"
		" migrate_to = '', migrate_start = 0 WHERE id = $1",
		5, p, NULL);
}

/* What may move where: *ret_src the VM's host. */
static int
check_move(struct manager *m, const struct vm_row *vm, const char *target,
	char ret_src[64], struct nq_error *err)
{
	_cleanup_(backend_unrefp) struct backend *b = registry_get(m->reg, vm->backend_id);
	char src[64];

	snprintf(src, sizeof src, "%s",
		vm->has_host && vm->host_id[0] ? vm->host_id : HOST_LOCAL_ID);
	if (!strcmp(vm->state, "provisioning"))
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"VM %s is being provisioned; migrate it when it is ready", vm->id);
	if (!b)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"the VM's storage backend was removed");
	if (!strcmp(b->ops->kind, "localfile"))
		return nq_error_setr(err, -EXDEV, "backend_not_shared", NULL,
			"VM %s lives on the localfile backend %s, a directory of host %s:"
			" only a VM on shared storage (smb) can move",
			vm->name, b->name, src);
	if (!strcmp(src, target))
		return nq_error_setr(err, -EINVAL, "host_unsuitable", "host_id",
			"VM %s is on host %s already", vm->name, target);
	snprintf(ret_src, 64, "%s", src);
	return 0;
}

static int
record_intent(struct manager *m, const char *id, const char *target, bool running)
{
	const char *p[] = { id, target, running ? "1" : "0" };

	return db_exec(m->db,
		"UPDATE vms SET migrate_to = $2, migrate_start = $3 WHERE id = $1", 3, p,
		NULL);
}

/* A failed arrival on target: back to src, or a clear error. */
static int
fail_back(struct manager *m, const struct vm_row *vm, const char *vid, const char *src,
	const char *target, bool running, struct nq_error *err)
{
	struct nq_error back = { 0 };
	char msg[600];

	if (arrive(m, vm, vid, src, running, &back) >= 0) {
		(void)settle(m, vm->id, src, running ? "running" : "stopped", NULL);
		log_warn("VM migration failed, VM back on its host id=%s host=%s code=%s",
			vm->id, src, err->code);
		return -EREMOTEIO;
	}
	snprintf(msg, sizeof msg,
		"migration to host %s failed (%s) and the VM could not return to host %s"
		" (%s); it runs nowhere: start it to retry on host %s",
		target, err->message, src, back.message, src);
	(void)settle(m, vm->id, src, "error", msg);
	log_warn("VM migration failed, VM stopped id=%s", vm->id);
	return -EREMOTEIO;
}

static void
migrated_event(struct manager *m, const char *id, const char *src, const char *target,
	const char *outcome, const char *why)
{
	char cause[300];

	snprintf(cause, sizeof cause, "from host %s to host %s: %s", src, target, why);
	events_record(m, "api", "vm.migrated", "vm", id, target, outcome, cause);
}

static int
migrate_claimed(struct manager *m, const char *id, const char *target, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 }, vrows = { 0 };
	struct volume_row vol;
	struct vm_row vm;
	char src[64], placed[64];
	bool running;
	int r;

	r = vms_fetch(m, id, &rows, &vm);
	if (r < 0)
		return nq_error_setr(err, r, r == -ENOENT ? "not_found" : "internal_error",
			NULL, "no VM with id %.64s", id);
	if ((r = check_move(m, &vm, target, src, err)) < 0)
		return r;
	if (vms_fetch_volume(m, id, &vrows, &vol) < 0 || strcmp(vol.state, "ready") != 0)
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"VM %s has no ready volume; start it once to provision it",
			vm.name);
	struct place_req q = { id, vm.backend_id, vm.memory_mib, target, src, NULL,
		vm.kernel, vm.initrd };
	if ((r = hosts_place(m, &q, placed, err)) < 0)
		return r;
	running = !strcmp(vm.state, "running");
	if (record_intent(m, id, target, running) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if ((r = leave(m, &vm, src, running, err)) < 0) {
		(void)record_intent(m, id, "", false);
		return r;
	}
	debug_gate("vm-migrate-left", NULL, NULL); /* tests: a crash here */
	r = arrive(m, &vm, vol.id, target, running, err);
	if (r < 0) {
		migrated_event(m, id, src, target, "failed", err->message);
		return fail_back(m, &vm, vol.id, src, target, running, err);
	}
	if (settle(m, id, target, running ? "running" : "stopped", NULL) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	log_info("VM migrated id=%s from=%s to=%s running=%d", id, src, target, running);
	migrated_event(m, id, src, target, "ok",
		running ? "moved running" : "moved stopped");
	return 0;
}

int
vms_migrate(struct manager *m, const char *id, const char *host_id, struct nq_error *err)
{
	char key[CLAIM_KEY_MAX];
	int r;

	claim_key(key, "vm", id);
	r = claim_try(key, "the VM", err);
	if (r < 0)
		return r;
	r = migrate_claimed(m, id, host_id, err);
	claim_release(key);
	return r;
}
