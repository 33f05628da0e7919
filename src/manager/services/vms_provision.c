/* VM provisioning: the worker that clones a VM's rootfs onto its backend
 * and boots it, holding the VM's claim until it is done; and booting on
 * the agent. A failure leaves the VM in state "error" with its cause and
 * no volume (no file, no row). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/debug_gate.h"
#include "common/http_server.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/metrics.h"
#include "manager/services/events.h"
#include "manager/services/claims.h"
#include "manager/services/hostpool.h"
#include "manager/services/vms.h"
#include "manager/services/vms_internal.h"
#include "manager/services/vms_snapshots.h"

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_cond = PTHREAD_COND_INITIALIZER;
static unsigned busy;

void
vms_wait_idle(void)
{
	pthread_mutex_lock(&busy_lock);
	while (busy)
		pthread_cond_wait(&busy_cond, &busy_lock);
	pthread_mutex_unlock(&busy_lock);
}

int
vms_agent_describe(struct manager *m, const struct backend_env *env,
	const struct vm_row *vm, const char *vid, bool start, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	struct backend *b;
	char kind[16], *body;
	json_t *o;
	int r;

	/* The agent finds the rootfs by backend kind, id and volume id. */
	b = registry_get(m->reg, vm->backend_id);
	if (!b)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"the VM's storage backend was removed");
	snprintf(kind, sizeof kind, "%s", b->ops->kind);
	backend_unref(b);
	o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:b}", "id", vm->id,
		"backend_kind", kind, "backend_id", vm->backend_id, "volume_id", vid,
		"vcpus", (json_int_t)vm->vcpus, "memory_mib", (json_int_t)vm->memory_mib,
		"kernel", vm->kernel, "start", start);
	if (o && vm->initrd[0])
		json_object_set_new(o, "initrd", json_string(vm->initrd));
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	r = agent_call(env->agent, "POST", "/v1/vms", body, strlen(body),
		VM_CALL_TIMEOUT_MS, &rep, err);
	free(body);
	agent_reply_release(&rep);
	return r;
}

/* Boot on the agent: start the VM it knows, or describe it first. */
int
vms_agent_boot(struct manager *m, const struct vm_row *vm, const char *vid,
	struct nq_error *err)
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	char path[128];
	int r;

	snprintf(path, sizeof path, "/v1/vms/%s/start", vm->id);
	if ((r = vms_env(m, vm, &env, err)) < 0)
		return r;
	r = agent_call(env.agent, "POST", path, NULL, 0, VM_CALL_TIMEOUT_MS, &rep, err);
	if (r >= 0 || rep.status != 404) {
		agent_reply_release(&rep);
		return r;
	}
	agent_reply_release(&rep);
	memset(err, 0, sizeof *err);
	return vms_agent_describe(m, &env, vm, vid, true, err);
}

static bool
gate_cancelled(void *key)
{
	return claim_cancelled(key);
}

/* The clone failed: whatever the agent wrote goes too, and the VM records
 * the cause (start retries). Not when the VM is being deleted: the
 * deleter removes everything once this worker has let go. */
static void
provision_failed(struct manager *m, const char *id, const char *key, struct backend *b,
	const char *vid, const struct nq_error *err)
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct nq_error ignore = { 0 };
	const char *p[] = { vid };
	char msg[600];

	if (claim_cancelled(key)) {
		log_info("VM provisioning cancelled id=%s", id);
		return;
	}
	/* When the agent cannot delete now (it was killed, say), the row
	 * stays in state "error": a retry reuses its id, and the agent then
	 * removes the stale temp file first. */
	if (b && (vms_env_by_id(m, id, &env, &ignore) < 0 ||
			 b->ops->delete_volume(&env, b->id, b->cfg, vid, &ignore) < 0))
		(void)db_exec(m->db, "UPDATE volumes SET state = 'error' WHERE id = $1", 1,
			p, NULL);
	else
		(void)db_exec(m->db, "DELETE FROM volumes WHERE id = $1", 1, p, NULL);
	snprintf(msg, sizeof msg, "provisioning the rootfs on backend %s failed (%s): %s",
		b ? b->name : "?", err->code, err->message);
	log_warn("VM provisioning failed id=%s code=%s", id, err->code);
	vms_set_state(m, id, "error", msg);
	events_record_error(m, "api", "vm.provision_failed", "vm", id, NULL, err);
}

/* The VM's disk: a copy of the snapshot it is made from, else a clone of
 * its image. */
static int
fill_volume(struct manager *m, const struct backend_env *env, struct backend *b,
	const struct vm_row *vm, const char *vid, struct volume_info *vi,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { vm->id }, *sid;

	if (db_query(m->db, "SELECT source_snapshot_id FROM vms WHERE id = $1", 1, p,
		    &rows) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	sid = db_rows_get(&rows, 0, 0);
	if (sid && sid[0])
		return snapshots_copy_to(m, env, sid, vid, vi, err);
	double t0 = metrics_now();
	int r = b->ops->provision_volume(env, b->id, b->cfg, vid,
		vm->image_id[0] ? vm->image_id : NULL, 0, vi, err);
	if (r >= 0 && vm->image_id[0])
		metrics_clone_observe(b->id, metrics_now() - t0);
	return r;
}

/* The worker: clone the image onto the backend, then boot. Runs with the
 * VM's claim (key), which the caller releases. */
static void
provision(struct manager *m, const char *id, const char *key)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 }, vrows = { 0 };
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct nq_error err = { 0 };
	struct volume_info vi = { 0 };
	struct volume_row vol;
	struct vm_row vm;
	char msg[600];
	const char *vid;
	struct backend *b = NULL;
	int r;

	if (vms_fetch(m, id, &rows, &vm) < 0 || vms_fetch_volume(m, id, &vrows, &vol) < 0) {
		log_warn("provisioning: VM or volume row vanished id=%s", id);
		return;
	}
	vid = vol.id;
	b = registry_get(m->reg, vm.backend_id);
	if (!b)
		r = nq_error_setr(&err, -ENOENT, "not_found", NULL,
			"the backend was removed");
	else if (claim_cancelled(key))
		r = nq_error_setr(&err, -ECANCELED, "cancelled", NULL,
			"the VM is being deleted");
	else if ((r = vms_env(m, &vm, &env, &err)) >= 0)
		r = fill_volume(m, &env, b, &vm, vid, &vi, &err);
	if (r < 0) {
		provision_failed(m, id, key, b, vid, &err);
		backend_unref(b);
		return;
	}
	backend_unref(b);
	if (debug_gate("vm-cloned", gate_cancelled, (void *)key) || claim_cancelled(key))
		return;
	r = vms_volume_ready(m, vid, &vi);
	if (r < 0) {
		vms_set_state(m, id, "error", "database error recording the volume");
		return;
	}
	log_info("VM rootfs ready id=%s volume=%s", id, vid);
	memset(&err, 0, sizeof err);
	if (vms_agent_boot(m, &vm, vid, &err) < 0) {
		snprintf(msg, sizeof msg, "booting failed (%s): %s", err.code, err.message);
		vms_set_state(m, id, "error", msg);
		events_record_error(m, "api", "vm.start_failed", "vm", id,
			vm.has_host ? vm.host_id : NULL, &err);
		return;
	}
	if (debug_gate("vm-booted", gate_cancelled, (void *)key) || claim_cancelled(key))
		return;
	vms_set_state(m, id, "running", NULL);
	log_info("VM running id=%s", id);
	events_record(m, "api", "vm.started", "vm", id, vm.has_host ? vm.host_id : NULL,
		"ok", NULL);
}

struct work {
	struct manager *m;
	char id[AUTH_UUID_LEN + 1];
	char user[HTTP_AUTH_USER_MAX]; /* who asked: the events' actor */
};

static void *
worker(void *arg)
{
	struct work *w = arg;
	char key[CLAIM_KEY_MAX];

	http_set_current_user(w->user);
	claim_key(key, "vm", w->id);
	provision(w->m, w->id, key);
	claim_release(key);
	free(w);
	pthread_mutex_lock(&busy_lock);
	busy--;
	pthread_cond_broadcast(&busy_cond);
	pthread_mutex_unlock(&busy_lock);
	return NULL;
}

/* Start the provisioning worker for VM id, handing it the VM's claim,
 * which the caller holds. On failure the claim is still the caller's. */
int
vms_spawn_worker(struct manager *m, const char *id)
{
	struct work *w = calloc(1, sizeof *w);
	pthread_t t;
	int r;

	if (!w)
		return -ENOMEM;
	w->m = m;
	snprintf(w->id, sizeof w->id, "%s", id);
	snprintf(w->user, sizeof w->user, "%s", http_current_user());
	pthread_mutex_lock(&busy_lock);
	busy++;
	pthread_mutex_unlock(&busy_lock);
	r = pthread_create(&t, NULL, worker, w);
	if (r != 0) {
		free(w);
		pthread_mutex_lock(&busy_lock);
		busy--;
		pthread_mutex_unlock(&busy_lock);
		return -r;
	}
	pthread_detach(t);
	return 0;
}
