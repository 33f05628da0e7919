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
#include "manager/services/hosts.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/images.h"
#include "manager/services/vms.h"
#include "manager/services/vm_exits.h"

#define VM_COLS "id, name, vcpus, memory_mib, image_id, backend_id, state, host_id," \
		" kernel, initrd, error, created_at, updated_at"

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

static void
now_str(char buf[24])
{
	snprintf(buf, 24, "%lld", (long long)time(NULL));
}

static int
fetch(struct manager *m, const char *id, struct db_rows *ret)
{
	const char *p[] = { id };
	int r = db_query(m->db, "SELECT " VM_COLS " FROM vms WHERE id = $1", 1, p, ret);

	if (r >= 0 && ret->nrows == 0) {
		db_rows_release(ret);
		return -ENOENT;
	}
	return r;
}

/* Volume of a VM: id, path, state ("" when none). */
static int
fetch_volume(struct manager *m, const char *vm_id, char vid[AUTH_UUID_LEN + 1],
	char *path, size_t pathsz, char state[16])
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { vm_id };
	int r = db_query(m->db, "SELECT id, path, state FROM volumes WHERE vm_id = $1",
		1, p, &rows);

	vid[0] = '\0';
	if (r < 0 || rows.nrows == 0)
		return r < 0 ? r : -ENOENT;
	snprintf(vid, AUTH_UUID_LEN + 1, "%s", db_rows_get(&rows, 0, 0));
	if (path)
		snprintf(path, pathsz, "%s", db_rows_get(&rows, 0, 1));
	if (state)
		snprintf(state, 16, "%s", db_rows_get(&rows, 0, 2));
	return 0;
}

static void
set_state(struct manager *m, const char *id, const char *state, const char *error)
{
	char now[24];
	const char *p[] = { id, state, error, now };

	now_str(now);
	if (db_exec(m->db, "UPDATE vms SET state = $2, error = $3, updated_at = $4"
		    " WHERE id = $1", 4, p, NULL) < 0)
		log_warn("cannot record VM state id=%s state=%s", id, state);
}

static json_t *
row_json(struct manager *m, const struct db_rows *rows, unsigned i)
{
	char vid[AUTH_UUID_LEN + 1], path[4096], vstate[16];
	const char *id = db_rows_get(rows, i, 0), *err = db_rows_get(rows, i, 10);
	json_t *vol = json_null();

	/* A volume in state "error" is a failed attempt waiting for its
	 * cleanup (the retry reuses its id): the VM has no volume. */
	if (fetch_volume(m, id, vid, path, sizeof path, vstate) >= 0 &&
	    strcmp(vstate, "error") != 0)
		vol = json_pack("{s:s, s:s, s:s}", "id", vid, "path", path, "state", vstate);
	return json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:I, s:I, s:o}",
		"id", id, "name", db_rows_get(rows, i, 1),
		"vcpus", (json_int_t)strtoll(db_rows_get(rows, i, 2), NULL, 10),
		"memory_mib", (json_int_t)strtoll(db_rows_get(rows, i, 3), NULL, 10),
		"image_id", db_rows_get(rows, i, 4) ? db_rows_get(rows, i, 4) : "",
		"storage_backend_id", db_rows_get(rows, i, 5) ? db_rows_get(rows, i, 5) : "",
		"state", db_rows_get(rows, i, 6),
		"host_id", db_rows_get(rows, i, 7) ? json_string(db_rows_get(rows, i, 7))
						   : json_null(),
		"kernel", db_rows_get(rows, i, 8),
		"error", err ? json_string(err) : json_null(), "volume", vol,
		"created_at", (json_int_t)strtoll(db_rows_get(rows, i, 11), NULL, 10),
		"updated_at", (json_int_t)strtoll(db_rows_get(rows, i, 12), NULL, 10),
		"last_exit", vm_exits_get(id));
}

/* The agent's view wins for VMs we believe run: a guest that powered
 * itself off shows as stopped; one the agent ended (its storage died)
 * shows as error with the agent's cause. */
static void
sync_states(struct manager *m)
{
	struct agent_reply rep = { 0 };
	json_t *v;
	size_t i;

	if (agent_call(m->env.agent, "GET", "/v1/vms", NULL, 0, 3000, &rep, NULL) < 0) {
		agent_reply_release(&rep);
		return;
	}
	vm_exits_update(rep.json);
	json_array_foreach(rep.json, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		const char *st = json_string_value(json_object_get(v, "state"));
		if (!id || !st || (strcmp(st, "stopped") && strcmp(st, "error")))
			continue;
		/* "error": the agent ended the VM, e.g. "storage connection lost". */
		bool failed = !strcmp(st, "error");
		const char *why = json_string_value(json_object_get(v, "error"));
		const char *p[] = { id, failed ? "error" : "stopped",
			failed ? (why ? why : "the VM failed on its host") : NULL };
		(void)db_exec(m->db, "UPDATE vms SET state = $2, error = $3 WHERE id = $1"
			" AND state = 'running'", 3, p, NULL);
	}
	agent_reply_release(&rep);
}

json_t *
vms_get_json(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	int r;

	sync_states(m);
	r = fetch(m, id, &rows);
	if (r < 0) {
		nq_error_setr(err, r, r == -ENOENT ? "not_found" : "internal_error", NULL,
			r == -ENOENT ? "no VM with id %.64s" : "database error", id);
		return NULL;
	}
	return row_json(m, &rows, 0);
}

json_t *
vms_list_json(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	json_t *arr;

	sync_states(m);
	if (db_query(m->db, "SELECT " VM_COLS " FROM vms ORDER BY created_at, name", 0,
		    NULL, &rows) < 0)
		return NULL;
	arr = json_array();
	for (unsigned i = 0; i < rows.nrows; i++)
		json_array_append_new(arr, row_json(m, &rows, i));
	return arr;
}

/* Boot on the agent: start the VM it knows, or describe it first. */
static int
agent_boot(struct manager *m, const struct db_rows *row, const char *vid,
	struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	const char *id = db_rows_get(row, 0, 0);
	char path[128], kind[16];
	struct backend *b;
	char *body;
	json_t *o;
	int r;

	snprintf(path, sizeof path, "/v1/vms/%s/start", id);
	r = agent_call(m->env.agent, "POST", path, NULL, 0, VM_CALL_TIMEOUT_MS, &rep, err);
	if (r >= 0 || rep.status != 404) {
		agent_reply_release(&rep);
		return r;
	}
	agent_reply_release(&rep);
	memset(err, 0, sizeof *err);
	/* The agent finds the rootfs by backend kind, id and volume id. */
	b = registry_get(m->reg, db_rows_get(row, 0, 5));
	if (!b)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"the VM's storage backend was removed");
	snprintf(kind, sizeof kind, "%s", b->ops->kind);
	backend_unref(b);
	o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:b}", "id", id,
		"backend_kind", kind, "backend_id", db_rows_get(row, 0, 5), "volume_id", vid,
		"vcpus", (json_int_t)strtoll(db_rows_get(row, 0, 2), NULL, 10),
		"memory_mib", (json_int_t)strtoll(db_rows_get(row, 0, 3), NULL, 10),
		"kernel", db_rows_get(row, 0, 8), "start", 1);
	if (o && *db_rows_get(row, 0, 9))
		json_object_set_new(o, "initrd", json_string(db_rows_get(row, 0, 9)));
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	r = agent_call(m->env.agent, "POST", "/v1/vms", body, strlen(body),
		VM_CALL_TIMEOUT_MS, &rep, err);
	free(body);
	agent_reply_release(&rep);
	return r;
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
provision_failed(struct manager *m, const char *id, const char *key,
	struct backend *b, const char *vid, const struct nq_error *err)
{
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
	if (b && b->ops->delete_volume(&m->env, b->id, b->cfg, vid, &ignore) < 0)
		(void)db_exec(m->db, "UPDATE volumes SET state = 'error' WHERE id = $1",
			1, p, NULL);
	else
		(void)db_exec(m->db, "DELETE FROM volumes WHERE id = $1", 1, p, NULL);
	snprintf(msg, sizeof msg, "provisioning the rootfs on backend %s failed (%s): %s",
		b ? b->name : "?", err->code, err->message);
	log_warn("VM provisioning failed id=%s code=%s", id, err->code);
	set_state(m, id, "error", msg);
}

/* The worker: clone the image onto the backend, then boot. Runs with the
 * VM's claim (key), which the caller releases. */
static void
provision(struct manager *m, const char *id, const char *key)
{
	_cleanup_(db_rows_release) struct db_rows row = { 0 };
	struct nq_error err = { 0 };
	struct volume_info vi = { 0 };
	char vid[AUTH_UUID_LEN + 1], msg[600];
	struct backend *b = NULL;
	int r;

	if (fetch(m, id, &row) < 0 || fetch_volume(m, id, vid, NULL, 0, NULL) < 0) {
		log_warn("provisioning: VM or volume row vanished id=%s", id);
		return;
	}
	b = registry_get(m->reg, db_rows_get(&row, 0, 5));
	if (!b)
		r = nq_error_setr(&err, -ENOENT, "not_found", NULL, "the backend was removed");
	else if (claim_cancelled(key))
		r = nq_error_setr(&err, -ECANCELED, "cancelled", NULL, "the VM is being deleted");
	else
		r = b->ops->provision_volume(&m->env, b->id, b->cfg, vid,
			db_rows_get(&row, 0, 4), 0, &vi, &err);
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
		set_state(m, id, "error", "database error recording the volume");
		return;
	}
	log_info("VM rootfs ready id=%s volume=%s", id, vid);
	memset(&err, 0, sizeof err);
	if (agent_boot(m, &row, vid, &err) < 0) {
		snprintf(msg, sizeof msg, "booting failed (%s): %s", err.code, err.message);
		set_state(m, id, "error", msg);
		return;
	}
	if (debug_gate("vm-booted", gate_cancelled, (void *)key) || claim_cancelled(key))
		return;
	set_state(m, id, "running", NULL);
	log_info("VM running id=%s", id);
}

struct work {
	struct manager *m;
	char id[AUTH_UUID_LEN + 1];
};

static void *
worker(void *arg)
{
	struct work *w = arg;
	char key[CLAIM_KEY_MAX];

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
static int
spawn_worker(struct manager *m, const char *id)
{
	struct work *w = calloc(1, sizeof *w);
	pthread_t t;
	int r;

	if (!w)
		return -ENOMEM;
	w->m = m;
	snprintf(w->id, sizeof w->id, "%s", id);
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

/* New volume row in state provisioning for VM id on its backend;
 * allocated_bytes stays NULL (unknown) until the agent says. */
static int
insert_volume(struct manager *m, const char *id, const char *backend_id)
{
	char vid[AUTH_UUID_LEN + 1], now[24];

	auth_new_uuid(vid);
	now_str(now);
	const char *p[] = { vid, backend_id, id, now };
	return db_exec(m->db, "INSERT INTO volumes (id, backend_id, vm_id, path, size_bytes,"
		" allocated_bytes, state, created_at) VALUES ($1, $2, $3, '', 0, NULL,"
		" 'provisioning', $4)", 4, p, NULL);
}

/* Insert the VM with its image and volume rows, all or nothing. */
static int
insert_vm(struct manager *m, const struct vm_new *v, const char *id, const char *bid,
	const struct host_info *host, const struct image_boot *img)
{
	char now[24], vc[16], mem[16], isz[24];
	int r;

	now_str(now);
	snprintf(vc, sizeof vc, "%u", v->vcpus);
	snprintf(mem, sizeof mem, "%u", v->memory_mib);
	snprintf(isz, sizeof isz, "%llu", img->size_bytes);
	const char *pi[] = { v->image_id, isz, now };
	const char *pv[] = { id, v->name, vc, mem, v->image_id, bid, host->id, img->kernel,
		img->initrd, now };
	r = db_begin(m->db);
	if (r >= 0)
		r = db_exec(m->db, "INSERT INTO images (id, name, size_bytes, created_at)"
			" VALUES ($1, $1, $2, $3) ON CONFLICT (id) DO UPDATE SET"
			" size_bytes = $2", 3, pi, NULL);
	if (r >= 0)
		r = db_exec(m->db, "INSERT INTO vms (id, name, vcpus, memory_mib, image_id,"
			" backend_id, state, host_id, kernel, initrd, created_at, updated_at)"
			" VALUES ($1, $2, $3, $4, $5, $6, 'provisioning', $7, $8, $9, $10, $10)",
			10, pv, NULL);
	if (r >= 0)
		r = insert_volume(m, id, bid);
	if (r >= 0)
		r = db_commit(m->db);
	if (r < 0)
		db_rollback(m->db);
	return r;
}

int
vms_create(struct manager *m, const struct vm_new *v, char ret_id[AUTH_UUID_LEN + 1],
	struct nq_error *err)
{
	char bid[BACKEND_ID_MAX + 1], id[AUTH_UUID_LEN + 1], bkey[CLAIM_KEY_MAX],
		vkey[CLAIM_KEY_MAX];
	struct image_boot img;
	struct host_info host;
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
	r = hosts_place(m, b->ops->kind, &host, err);
	backend_unref(b);
	if (r < 0 || (r = images_resolve(m, v->image_id, &img, err)) < 0)
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
		r = insert_vm(m, v, id, bid, &host, &img);
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
	r = spawn_worker(m, id);
	if (r < 0) {
		claim_release(vkey);
		set_state(m, id, "error", "cannot start the provisioning worker");
		return nq_error_setr(err, r, "internal_error", NULL, "cannot start a worker");
	}
	snprintf(ret_id, AUTH_UUID_LEN + 1, "%s", id);
	return 0;
}

/* Fetch a VM the caller has claimed. */
static int
load_claimed(struct manager *m, const char *id, struct db_rows *row, struct nq_error *err)
{
	int r = fetch(m, id, row);

	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no VM with id %.64s", id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	return 0;
}

/* Provisioning failed earlier (no volume): start retries it, handing the
 * claim to the worker. Returns 1 when the worker took the claim. */
static int
reprovision(struct manager *m, const char *id, const struct db_rows *row,
	const char *reuse_vid, struct nq_error *err)
{
	const char *p[] = { reuse_vid };
	int r = reuse_vid ? db_exec(m->db, "UPDATE volumes SET state = 'provisioning'"
				  " WHERE id = $1", 1, p, NULL)
			  : insert_volume(m, id, db_rows_get(row, 0, 5));

	if (r == -EBUSY)
		return nq_error_setr(err, r, "not_found", NULL,
			"the VM's storage backend was removed");
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	set_state(m, id, "provisioning", NULL);
	r = spawn_worker(m, id);
	if (r < 0) {
		set_state(m, id, "error", "cannot start the provisioning worker");
		return nq_error_setr(err, r, "internal_error", NULL, "cannot start a worker");
	}
	return 1;
}

static int
action_claimed(struct manager *m, const char *id, enum vm_action act,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows row = { 0 };
	struct agent_reply rep = { 0 };
	char vid[AUTH_UUID_LEN + 1], path[128], vstate[16];
	int r;

	r = load_claimed(m, id, &row, err);
	if (r < 0)
		return r;
	if (!strcmp(db_rows_get(&row, 0, 6), "provisioning"))
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"VM %s is being provisioned; try again when it is ready", id);
	if (fetch_volume(m, id, vid, NULL, 0, vstate) < 0)
		return act == VM_STOP ? 0 : reprovision(m, id, &row, NULL, err);
	if (strcmp(vstate, "ready") != 0)
		return act == VM_STOP ? 0 : reprovision(m, id, &row, vid, err);
	if (act == VM_START) {
		r = agent_boot(m, &row, vid, err);
	} else {
		snprintf(path, sizeof path, "/v1/vms/%s/%s", id,
			act == VM_STOP ? "stop" : "restart");
		r = agent_call(m->env.agent, "POST", path, NULL, 0, VM_CALL_TIMEOUT_MS,
			&rep, err);
		if (r < 0 && rep.status == 404) {
			memset(err, 0, sizeof *err);
			r = act == VM_STOP ? 0 : agent_boot(m, &row, vid, err);
		}
		agent_reply_release(&rep);
	}
	if (r < 0)
		return r;
	set_state(m, id, act == VM_STOP ? "stopped" : "running", NULL);
	log_info("VM %s id=%s", act == VM_STOP ? "stopped" : "started", id);
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
	_cleanup_(db_rows_release) struct db_rows row = { 0 };
	char vid[AUTH_UUID_LEN + 1];
	struct nq_error ignore = { 0 };
	struct backend *b;

	if (!claim_cancel(key))
		return claim_wait(key, VM_CALL_TIMEOUT_MS, "the VM", err);
	log_info("cancelling the provisioning of VM id=%s", id);
	if (fetch(m, id, &row) >= 0 && !strcmp(db_rows_get(&row, 0, 6), "provisioning") &&
	    fetch_volume(m, id, vid, NULL, 0, NULL) >= 0 &&
	    (b = registry_get(m->reg, db_rows_get(&row, 0, 5)))) {
		(void)b->ops->delete_volume(&m->env, b->id, b->cfg, vid, &ignore);
		backend_unref(b);
	}
	return claim_wait(key, m->env.provision_timeout_ms > 0 ? m->env.provision_timeout_ms
		: VM_CALL_TIMEOUT_MS, "the VM", err);
}

static int
delete_claimed(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows row = { 0 };
	struct agent_reply rep = { 0 };
	char vid[AUTH_UUID_LEN + 1], path[128];
	struct backend *b;
	int r, status;

	r = load_claimed(m, id, &row, err);
	if (r < 0)
		return r;
	snprintf(path, sizeof path, "/v1/vms/%s", id);
	r = agent_call(m->env.agent, "DELETE", path, NULL, 0, VM_CALL_TIMEOUT_MS, &rep, err);
	status = rep.status;
	agent_reply_release(&rep);
	if (r < 0 && status != 404)
		return r;
	memset(err, 0, sizeof *err);
	if (fetch_volume(m, id, vid, NULL, 0, NULL) >= 0) {
		b = registry_get(m->reg, db_rows_get(&row, 0, 5));
		if (b) {
			r = b->ops->delete_volume(&m->env, b->id, b->cfg, vid, err);
			backend_unref(b);
			if (r < 0)
				return r;
		}
	}
	const char *p[] = { id };
	r = db_begin(m->db);
	if (r >= 0)
		r = db_exec(m->db, "DELETE FROM volumes WHERE vm_id = $1", 1, p, NULL);
	if (r >= 0)
		r = db_exec(m->db, "DELETE FROM vms WHERE id = $1", 1, p, NULL);
	if (r >= 0)
		r = db_commit(m->db);
	if (r < 0)
		db_rollback(m->db);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	log_info("VM deleted id=%s", id);
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
