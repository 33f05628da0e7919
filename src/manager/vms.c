/* VM operations: create (tracked provisioning worker), start, stop,
 * restart, delete. Database writes take m->mutate_lock briefly; agent
 * calls run outside it. A VM in state "provisioning" belongs to its worker:
 * other operations on it are refused with 409. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hosts.h"
#include "log.h"
#include "manager.h"
#include "vms.h"

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
	pthread_mutex_lock(&m->mutate_lock);
	if (db_exec(m->db, "UPDATE vms SET state = $2, error = $3, updated_at = $4"
		    " WHERE id = $1", 4, p, NULL) < 0)
		log_warn("cannot record VM state id=%s state=%s", id, state);
	pthread_mutex_unlock(&m->mutate_lock);
}

static json_t *
row_json(struct manager *m, const struct db_rows *rows, unsigned i)
{
	char vid[AUTH_UUID_LEN + 1], path[4096], vstate[16];
	const char *id = db_rows_get(rows, i, 0), *err = db_rows_get(rows, i, 10);
	json_t *vol = json_null();

	if (fetch_volume(m, id, vid, path, sizeof path, vstate) >= 0)
		vol = json_pack("{s:s, s:s, s:s}", "id", vid, "path", path, "state", vstate);
	return json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:I, s:I}",
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
		"updated_at", (json_int_t)strtoll(db_rows_get(rows, i, 12), NULL, 10));
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
		pthread_mutex_lock(&m->mutate_lock);
		(void)db_exec(m->db, "UPDATE vms SET state = $2, error = $3 WHERE id = $1"
			" AND state = 'running'", 3, p, NULL);
		pthread_mutex_unlock(&m->mutate_lock);
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

/* The worker: clone the image onto the backend, then boot. */
static void
provision(struct manager *m, const char *id)
{
	_cleanup_(db_rows_release) struct db_rows row = { 0 };
	struct nq_error err = { 0 }, ignore = { 0 };
	struct volume_info vi = { 0 };
	char vid[AUTH_UUID_LEN + 1], msg[600], sz[24], alloc[24];
	struct backend *b = NULL;
	int r;

	if (fetch(m, id, &row) < 0 || fetch_volume(m, id, vid, NULL, 0, NULL) < 0) {
		log_warn("provisioning: VM or volume row vanished id=%s", id);
		return;
	}
	b = registry_get(m->reg, db_rows_get(&row, 0, 5));
	if (!b)
		r = nq_error_setr(&err, -ENOENT, "not_found", NULL, "the backend was removed");
	else
		r = b->ops->provision_volume(&m->env, b->id, b->cfg, vid,
			db_rows_get(&row, 0, 4), 0, &vi, &err);
	if (r < 0) {
		const char *p[] = { vid };
		/* Whatever the agent wrote before failing goes too. */
		if (b)
			(void)b->ops->delete_volume(&m->env, b->id, b->cfg, vid, &ignore);
		pthread_mutex_lock(&m->mutate_lock);
		(void)db_exec(m->db, "DELETE FROM volumes WHERE id = $1", 1, p, NULL);
		pthread_mutex_unlock(&m->mutate_lock);
		snprintf(msg, sizeof msg, "provisioning the rootfs on backend %s failed (%s): %s",
			b ? b->name : "?", err.code, err.message);
		log_warn("VM provisioning failed id=%s code=%s", id, err.code);
		set_state(m, id, "error", msg);
		backend_unref(b);
		return;
	}
	backend_unref(b);
	snprintf(sz, sizeof sz, "%" PRIu64, vi.size_bytes);
	snprintf(alloc, sizeof alloc, "%" PRIu64, vi.allocated_bytes);
	const char *p[] = { vid, vi.path, sz, alloc };
	pthread_mutex_lock(&m->mutate_lock);
	r = db_exec(m->db, "UPDATE volumes SET path = $2, size_bytes = $3,"
		" allocated_bytes = $4, state = 'ready' WHERE id = $1", 4, p, NULL);
	pthread_mutex_unlock(&m->mutate_lock);
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

	provision(w->m, w->id);
	free(w);
	pthread_mutex_lock(&busy_lock);
	busy--;
	pthread_cond_broadcast(&busy_cond);
	pthread_mutex_unlock(&busy_lock);
	return NULL;
}

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

/* New volume row in state provisioning for VM id on its backend. */
static int
insert_volume(struct manager *m, const char *id, const char *backend_id)
{
	char vid[AUTH_UUID_LEN + 1], now[24];

	auth_new_uuid(vid);
	now_str(now);
	const char *p[] = { vid, backend_id, id, now };
	return db_exec(m->db, "INSERT INTO volumes (id, backend_id, vm_id, path, size_bytes,"
		" allocated_bytes, state, created_at) VALUES ($1, $2, $3, '', 0, 0,"
		" 'provisioning', $4)", 4, p, NULL);
}

int
vms_create(struct manager *m, const struct vm_new *v, char ret_id[AUTH_UUID_LEN + 1],
	struct nq_error *err)
{
	char bid[BACKEND_ID_MAX + 1], id[AUTH_UUID_LEN + 1], now[24], vc[16], mem[16],
		isz[24];
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
	auth_new_uuid(id);
	now_str(now);
	snprintf(vc, sizeof vc, "%u", v->vcpus);
	snprintf(mem, sizeof mem, "%u", v->memory_mib);
	snprintf(isz, sizeof isz, "%llu", img.size_bytes);
	const char *pi[] = { v->image_id, isz, now };
	const char *pv[] = { id, v->name, vc, mem, v->image_id, bid, host.id, img.kernel,
		img.initrd, now };
	pthread_mutex_lock(&m->mutate_lock);
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
	pthread_mutex_unlock(&m->mutate_lock);
	if (r == -EEXIST)
		return nq_error_setr(err, r, "name_taken", "name",
			"a VM named %s exists already", v->name);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	log_info("VM created id=%s name=%s backend=%s image=%s", id, v->name, bid,
		v->image_id);
	r = spawn_worker(m, id);
	if (r < 0) {
		set_state(m, id, "error", "cannot start the provisioning worker");
		return nq_error_setr(err, r, "internal_error", NULL, "cannot start a worker");
	}
	snprintf(ret_id, AUTH_UUID_LEN + 1, "%s", id);
	return 0;
}

/* Claim the VM for an operation: refuses while a worker owns it. */
static int
load_idle(struct manager *m, const char *id, struct db_rows *row, struct nq_error *err)
{
	int r = fetch(m, id, row);

	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no VM with id %.64s", id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (!strcmp(db_rows_get(row, 0, 6), "provisioning")) {
		db_rows_release(row);
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"VM %s is being provisioned; try again when it is ready", id);
	}
	return 0;
}

int
vms_action(struct manager *m, const char *id, enum vm_action act, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows row = { 0 };
	struct agent_reply rep = { 0 };
	char vid[AUTH_UUID_LEN + 1], path[128];
	int r;

	r = load_idle(m, id, &row, err);
	if (r < 0)
		return r;
	if (fetch_volume(m, id, vid, NULL, 0, NULL) < 0) {
		/* Provisioning failed earlier: start retries it. */
		if (act == VM_STOP)
			return 0;
		pthread_mutex_lock(&m->mutate_lock);
		r = insert_volume(m, id, db_rows_get(&row, 0, 5));
		pthread_mutex_unlock(&m->mutate_lock);
		if (r < 0)
			return nq_error_setr(err, r, "internal_error", NULL, "database error");
		set_state(m, id, "provisioning", NULL);
		r = spawn_worker(m, id);
		return r < 0 ? nq_error_setr(err, r, "internal_error", NULL,
				       "cannot start a worker") : 0;
	}
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
vms_delete(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows row = { 0 };
	struct agent_reply rep = { 0 };
	char vid[AUTH_UUID_LEN + 1], path[128];
	struct backend *b;
	int r, status;

	r = load_idle(m, id, &row, err);
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
	pthread_mutex_lock(&m->mutate_lock);
	r = db_begin(m->db);
	if (r >= 0)
		r = db_exec(m->db, "DELETE FROM volumes WHERE vm_id = $1", 1, p, NULL);
	if (r >= 0)
		r = db_exec(m->db, "DELETE FROM vms WHERE id = $1", 1, p, NULL);
	if (r >= 0)
		r = db_commit(m->db);
	if (r < 0)
		db_rollback(m->db);
	pthread_mutex_unlock(&m->mutate_lock);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	log_info("VM deleted id=%s", id);
	return 0;
}
