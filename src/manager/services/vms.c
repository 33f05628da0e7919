/* VM operations: create (tracked provisioning worker), start, stop,
 * restart, delete. Every operation claims its VM (claims.h): a second one
 * gets 409 "busy" at once; the provisioning worker holds the claim until
 * it is done. Deleting a VM that is being provisioned cancels the worker
 * (and the agent's clone) and waits for it. No lock is held across an
 * agent call. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/services/claims.h"
#include "common/debug_gate.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/images.h"
#include "manager/services/vms.h"
#include "manager/services/vms_internal.h"
#include "manager/services/events.h"

static void
now_str(char buf[24])
{
	snprintf(buf, 24, "%lld", (long long)time(NULL));
}

/* The VM row id into *rows and *ret (pointing into rows). */
int
vms_fetch(struct manager *m, const char *id, struct db_rows *rows, struct vm_row *ret)
{
	const char *p[] = { id };
	int r = db_query(m->db, "SELECT " VM_ROW_COLS " FROM vms WHERE id = $1", 1, p,
		rows);

	if (r >= 0 && rows->nrows == 0)
		return -ENOENT;
	return r < 0 ? r : vm_row_read(rows, 0, ret);
}

/* The volume of VM vm_id into *rows and *ret; -ENOENT when it has none. */
int
vms_fetch_volume(struct manager *m, const char *vm_id, struct db_rows *rows,
	struct volume_row *ret)
{
	const char *p[] = { vm_id };
	int r = db_query(m->db, "SELECT " VOLUME_ROW_COLS " FROM volumes WHERE vm_id = $1",
		1, p, rows);

	if (r >= 0 && rows->nrows == 0)
		return -ENOENT;
	return r < 0 ? r : volume_row_read(rows, 0, ret);
}

void
vms_set_state(struct manager *m, const char *id, const char *state, const char *error)
{
	char now[24];
	const char *p[] = { id, state, error, now };

	now_str(now);
	if (db_exec(m->db,
		    "UPDATE vms SET state_changed_at = CASE WHEN state <> $2 THEN $4"
		    " ELSE state_changed_at END, state = $2, error = $3, updated_at = $4"
		    " WHERE id = $1",
		    4, p, NULL) < 0)
		log_warn("cannot record VM state id=%s state=%s", id, state);
}

/* A new volume row ($1 id, $2 backend, $3 VM, $4 now) in state
 * provisioning; allocated_bytes stays NULL (unknown) until the agent says. */
#define INSERT_VOLUME_SQL                                                                 \
	"INSERT INTO volumes (id, backend_id, vm_id, path, size_bytes,"                   \
	" allocated_bytes, state, created_at) VALUES ($1, $2, $3, '', 0, NULL,"           \
	" 'provisioning', $4)"

int
vms_insert_volume(struct manager *m, const char *id, const char *backend_id)
{
	char vid[AUTH_UUID_LEN + 1], now[24];

	auth_new_uuid(vid);
	now_str(now);
	const char *p[] = { vid, backend_id, id, now };
	return db_exec(m->db, INSERT_VOLUME_SQL, 4, p, NULL);
}

/* Insert the VM with its image and volume rows, all or nothing. */
static int
insert_vm(struct manager *m, const struct vm_new *v, const char *id, const char *bid,
	const char *host_id, const struct image_boot *img)
{
	char now[24], vc[16], mem[16], isz[24], vid[AUTH_UUID_LEN + 1];
	const char *ha = v->ha ? "1" : "0";

	now_str(now);
	auth_new_uuid(vid);
	snprintf(vc, sizeof vc, "%u", v->vcpus);
	snprintf(mem, sizeof mem, "%u", v->memory_mib);
	snprintf(isz, sizeof isz, "%llu", img->size_bytes);
	const char *pi[] = { v->image_id, isz, now };
	const char *pv[] = { id, v->name, vc, mem, v->image_id, bid, host_id, img->kernel,
		img->initrd, now, ha };
	const char *pvol[] = { vid, bid, id, now };
	const struct db_stmt steps[] = {
		{ "INSERT INTO images (id, name, size_bytes, created_at)"
		  " VALUES ($1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET size_bytes = $2",
			3, pi },
		{ "INSERT INTO vms (id, name, vcpus, memory_mib, image_id, backend_id, state,"
		  " host_id, kernel, initrd, created_at, updated_at, ha) VALUES ($1, $2,"
		  " $3, $4, $5, $6, 'provisioning', $7, $8, $9, $10, $10, $11)",
			11, pv },
		{ INSERT_VOLUME_SQL, 4, pvol },
	};
	return db_exec_tx(m->db, steps, ARRAY_SIZE(steps));
}

int
vms_create(struct manager *m, const struct vm_new *v, char ret_id[AUTH_UUID_LEN + 1],
	struct nq_error *err)
{
	char bid[BACKEND_ID_MAX + 1], id[AUTH_UUID_LEN + 1], bkey[CLAIM_KEY_MAX],
		vkey[CLAIM_KEY_MAX];
	struct image_boot img;
	char host[64];
	struct backend *b;
	int r;

	if (v->backend_id)
		snprintf(bid, sizeof bid, "%s", v->backend_id);
	else
		registry_default(m->reg, bid, sizeof bid);
	b = registry_get(m->reg, bid);
	if (!b)
		return nq_error_setr(err, -ENOENT, "invalid_field", "storage_backend_id",
			"no backend with id %.64s", bid);
	backend_unref(b);
	struct place_req pq = { NULL, bid, v->memory_mib, v->host_id, NULL, v->image_id,
		NULL, NULL };
	r = hosts_place(m, &pq, host, err);
	if (r < 0 || (r = vms_check_memory(m, host, v->memory_mib, err)) < 0 ||
		(r = images_resolve(m, host, v->image_id, &img, err)) < 0)
		return r;
	/* The backend's claim for the inserts only: a PATCH or DELETE of this
	 * backend in flight answers 409 busy here instead of racing us. */
	claim_key(bkey, "backend", bid);
	r = claim_try(bkey, "the storage backend", err);
	if (r < 0)
		return r;
	b = registry_get(m->reg, bid);
	auth_new_uuid(id);
	claim_key(vkey, "vm", id);
	if (!b)
		r = nq_error_setr(err, -ENOENT, "not_found", "storage_backend_id",
			"the backend %.64s was removed", bid);
	else if ((r = claim_try(vkey, "the VM", err)) >= 0)
		r = insert_vm(m, v, id, bid, host, &img);
	backend_unref(b);
	claim_release(bkey);
	if (r < 0 && b)
		claim_release(vkey);
	if (r < 0 && err->code[0])
		return r;
	if (r == -EEXIST)
		return nq_error_setr(err, r, "name_taken", "name",
			"a VM named %s exists already", v->name);
	if (r == -EBUSY)
		return nq_error_setr(err, r, "not_found", "storage_backend_id",
			"the backend %.64s was removed", bid);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	log_info("VM created id=%s name=%s backend=%s image=%s", id, v->name, bid,
		v->image_id);
	events_record(m, "api", "vm.created", "vm", id, host, "ok", NULL);
	r = vms_spawn_worker(m, id);
	if (r < 0) {
		claim_release(vkey);
		vms_set_state(m, id, "error", "cannot start the provisioning worker");
		return nq_error_setr(err, r, "internal_error", NULL,
			"cannot start a worker");
	}
	snprintf(ret_id, AUTH_UUID_LEN + 1, "%s", id);
	return 0;
}

/* Fetch a VM the caller has claimed. */
static int
load_claimed(struct manager *m, const char *id, struct db_rows *rows, struct vm_row *ret,
	struct nq_error *err)
{
	int r = vms_fetch(m, id, rows, ret);

	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no VM with id %.64s", id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	return 0;
}

/* Provisioning failed earlier (no volume): start retries it, handing the
 * claim to the worker. Returns 1 when the worker took the claim. */
static int
reprovision(struct manager *m, const struct vm_row *vm, const char *reuse_vid,
	struct nq_error *err)
{
	const char *p[] = { reuse_vid };
	int r = reuse_vid ? db_exec(m->db,
				    "UPDATE volumes SET state = 'provisioning'"
				    " WHERE id = $1",
				    1, p, NULL)
			  : vms_insert_volume(m, vm->id, vm->backend_id);

	if (r == -EBUSY)
		return nq_error_setr(err, r, "not_found", NULL,
			"the VM's storage backend was removed");
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	vms_set_state(m, vm->id, "provisioning", NULL);
	r = vms_spawn_worker(m, vm->id);
	if (r < 0) {
		vms_set_state(m, vm->id, "error", "cannot start the provisioning worker");
		return nq_error_setr(err, r, "internal_error", NULL,
			"cannot start a worker");
	}
	return 1;
}

/* Stop or restart on the agent; one the agent does not know is booted
 * (restart) or counts as stopped. */
static int
agent_stop_restart(struct manager *m, const struct vm_row *vm, const char *vid,
	enum vm_action act, struct nq_error *err)
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	char path[128];
	int r;

	snprintf(path, sizeof path, "/v1/vms/%s/%s", vm->id,
		act == VM_STOP ? "stop" : "restart");
	if ((r = vms_env(m, vm, &env, err)) < 0)
		return r;
	r = agent_call(env.agent, "POST", path, NULL, 0, VM_CALL_TIMEOUT_MS, &rep, err);
	if (r < 0 && rep.status == 404) {
		memset(err, 0, sizeof *err);
		r = act == VM_STOP ? 0 : vms_agent_boot(m, vm, vid, err);
	}
	agent_reply_release(&rep);
	return r;
}

static int
action_claimed(struct manager *m, const char *id, enum vm_action act, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 }, vrows = { 0 };
	struct volume_row vol;
	struct vm_row vm;
	int r;

	r = load_claimed(m, id, &rows, &vm, err);
	if (r < 0)
		return r;
	if (!strcmp(vm.state, "provisioning"))
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"VM %s is being provisioned; try again when it is ready", id);
	if (vms_fetch_volume(m, id, &vrows, &vol) < 0)
		return act == VM_STOP ? 0 : reprovision(m, &vm, NULL, err);
	if (strcmp(vol.state, "ready") != 0)
		return act == VM_STOP ? 0 : reprovision(m, &vm, vol.id, err);
	if (act == VM_START && strcmp(vm.state, "running") != 0 &&
		(r = vms_check_memory(m, vm.has_host ? vm.host_id : NULL, vm.memory_mib,
			 err)) < 0)
		return r;
	if (act == VM_START)
		r = vms_agent_boot(m, &vm, vol.id, err);
	else
		r = agent_stop_restart(m, &vm, vol.id, act, err);
	if (r < 0)
		return r;
	vms_set_state(m, id, act == VM_STOP ? "stopped" : "running", NULL);
	log_info("VM %s id=%s", act == VM_STOP ? "stopped" : "started", id);
	events_record(m, "api",
		act == VM_STOP    ? "vm.stopped"
		: act == VM_START ? "vm.started"
				  : "vm.restarted",
		"vm", id, vm.has_host ? vm.host_id : NULL, "ok", NULL);
	return 0;
}

int
vms_action(struct manager *m, const char *id, enum vm_action act, struct nq_error *err)
{
	char key[CLAIM_KEY_MAX];
	int r;

	claim_key(key, "vm", id);
	r = claim_try(key, "the VM", err);
	if (r < 0)
		return r;
	r = action_claimed(m, id, act, err);
	if (r != 1)
		claim_release(key);
	return r < 0 ? r : 0;
}

/* A worker provisions this VM: cancel it, and the agent's clone with it
 * (deleting a volume that is being created cancels the creation), then
 * wait until the worker lets go. */
static int
cancel_worker(struct manager *m, const char *id, const char *key, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 }, vrows = { 0 };
	struct nq_error ignore = { 0 };
	struct volume_row vol;
	struct vm_row vm;
	struct backend *b;

	if (!claim_cancel(key))
		return claim_wait(key, VM_CALL_TIMEOUT_MS, "the VM", err);
	log_info("cancelling the provisioning of VM id=%s", id);
	if (vms_fetch(m, id, &rows, &vm) >= 0 && !strcmp(vm.state, "provisioning") &&
		vms_fetch_volume(m, id, &vrows, &vol) >= 0 &&
		(b = registry_get(m->reg, vm.backend_id))) {
		struct backend_env env = { 0 };
		if (vms_env(m, &vm, &env, &ignore) >= 0)
			(void)b->ops->delete_volume(&env, b->id, b->cfg, vol.id, &ignore);
		hosts_env_release(&env);
		backend_unref(b);
	}
	return claim_wait(key,
		m->env.provision_timeout_ms > 0
			? m->env.provision_timeout_ms
			: VM_CALL_TIMEOUT_MS,
		"the VM", err);
}

static int
delete_claimed(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 }, vrows = { 0 };
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	struct volume_row vol;
	struct vm_row vm;
	char path[128];
	struct backend *b;
	int r, status;

	r = load_claimed(m, id, &rows, &vm, err);
	if (r < 0 || (r = vms_env(m, &vm, &env, err)) < 0)
		return r;
	snprintf(path, sizeof path, "/v1/vms/%s", id);
	r = agent_call(env.agent, "DELETE", path, NULL, 0, VM_CALL_TIMEOUT_MS, &rep, err);
	status = rep.status;
	agent_reply_release(&rep);
	if (r < 0 && status != 404)
		return r;
	memset(err, 0, sizeof *err);
	if (vms_fetch_volume(m, id, &vrows, &vol) >= 0) {
		b = registry_get(m->reg, vm.backend_id);
		if (b) {
			r = b->ops->delete_volume(&env, b->id, b->cfg, vol.id, err);
			backend_unref(b);
			if (r < 0)
				return r;
		}
	}
	const char *p[] = { id };
	const struct db_stmt steps[] = {
		{ "DELETE FROM volumes WHERE vm_id = $1", 1, p },
		{ "DELETE FROM vms WHERE id = $1", 1, p },
	};
	r = db_exec_tx(m->db, steps, ARRAY_SIZE(steps));
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	log_info("VM deleted id=%s", id);
	events_record(m, "api", "vm.deleted", "vm", id, vm.has_host ? vm.host_id : NULL,
		"ok", NULL);
	return 0;
}

int
vms_delete(struct manager *m, const char *id, struct nq_error *err)
{
	char key[CLAIM_KEY_MAX];
	int r;

	claim_key(key, "vm", id);
	if (claim_try(key, "the VM", NULL) < 0 && (r = cancel_worker(m, id, key, err)) < 0)
		return r;
	r = delete_claimed(m, id, err);
	claim_release(key);
	return r;
}

int
vms_set_ha(struct manager *m, const char *id, bool ha, struct nq_error *err)
{
	unsigned long changes = 0;
	const char *p[] = { id, ha ? "1" : "0" };
	int r = db_exec(m->db, "UPDATE vms SET ha = $2 WHERE id = $1", 2, p, &changes);

	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (changes == 0)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"no VM with id %.64s", id);
	events_record(m, "api", "vm.updated", "vm", id, NULL, "ok",
		ha ? "ha enabled" : "ha disabled");
	return 0;
}
