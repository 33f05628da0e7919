/* Snapshots (vms_snapshots.h): listing, taking one, and the agent calls
 * the other operations share. No lock is held across an agent call; the
 * VM's claim keeps other operations on it away meanwhile. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/validate.h"
#include "manager/manager.h"
#include "manager/services/claims.h"
#include "manager/services/events.h"
#include "manager/services/hostpool.h"
#include "manager/services/vms.h"
#include "manager/services/vms_internal.h"
#include "manager/services/vms_snapshots.h"

static long
copy_timeout(const struct manager *m)
{
	return m->env.provision_timeout_ms > 0
		       ? m->env.provision_timeout_ms
		       : VM_CALL_TIMEOUT_MS;
}

/* Row i of a SELECT SNAPSHOT_COLS as the API shows it. */
static json_t *
snapshot_json(const struct db_rows *rows, unsigned i)
{
	const char *alloc = db_rows_get(rows, i, 5), *state = db_rows_get(rows, i, 6);

	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:I, s:s}", "id",
		db_rows_get(rows, i, 0) ?: "", "backend_id", db_rows_get(rows, i, 1) ?: "",
		"vm_id", db_rows_get(rows, i, 2) ?: "", "name",
		db_rows_get(rows, i, 3) ?: "", "size_bytes",
		(json_int_t)strtoll(db_rows_get(rows, i, 4) ?: "0", NULL, 10),
		"allocated_bytes",
		alloc ? json_integer((json_int_t)strtoll(alloc, NULL, 10)) : json_null(),
		"created_at",
		(json_int_t)strtoll(db_rows_get(rows, i, 7) ?: "0", NULL, 10), "state",
		state && !strcmp(state, "provisioning") ? "creating" : (state ?: ""));
}

int
snapshots_fetch(struct manager *m, const char *vm_id, const char *sid, const char *field,
	struct db_rows *rows, struct nq_error *err)
{
	const char *p[] = { sid, vm_id };
	int r = db_query(m->db,
		vm_id ? "SELECT " SNAPSHOT_COLS " FROM volumes WHERE id = $1"
			" AND snapshot_of = $2"
		      : "SELECT " SNAPSHOT_COLS " FROM volumes WHERE id = $1"
			" AND snapshot_of IS NOT NULL",
		vm_id ? 2 : 1, p, rows);

	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (rows->nrows == 0)
		return nq_error_setr(err, -ENOENT, "not_found", field,
			"no snapshot with id %.64s%s", sid, vm_id ? " of this VM" : "");
	return 0;
}

/* 404 unless VM vm_id exists. */
static int
vm_exists(struct manager *m, const char *vm_id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct vm_row vm;
	int r = vms_fetch(m, vm_id, &rows, &vm);

	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no VM with id %.64s",
			vm_id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	return 0;
}

json_t *
snapshots_list_json(struct manager *m, const char *vm_id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { vm_id };
	json_t *arr;

	if (vm_exists(m, vm_id, err) < 0)
		return NULL;
	if (db_query(m->db,
		    "SELECT " SNAPSHOT_COLS " FROM volumes WHERE snapshot_of = $1"
		    " AND state <> 'error' ORDER BY created_at, id",
		    1, p, &rows) < 0) {
		nq_error_set(err, "internal_error", NULL, "database error");
		return NULL;
	}
	arr = json_array();
	for (unsigned i = 0; arr && i < rows.nrows; i++)
		json_array_append_new(arr, snapshot_json(&rows, i));
	return arr;
}

json_t *
snapshots_get_json(struct manager *m, const char *vm_id, const char *sid,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };

	if (vm_id && vm_exists(m, vm_id, err) < 0)
		return NULL;
	if (snapshots_fetch(m, vm_id, sid, NULL, &rows, err) < 0)
		return NULL;
	return snapshot_json(&rows, 0);
}

static void
fill_volume_info(json_t *o, struct volume_info *ret)
{
	json_t *a = json_object_get(o, "allocated_bytes");
	const char *p = json_string_value(json_object_get(o, "path"));

	snprintf(ret->path, sizeof ret->path, "%s", p ? p : "");
	ret->size_bytes = (uint64_t)json_integer_value(json_object_get(o, "size_bytes"));
	ret->allocated_known = json_is_integer(a) && json_integer_value(a) >= 0;
	ret->allocated_bytes = ret->allocated_known ? (uint64_t)json_integer_value(a) : 0;
}

/* POST path {key: value} under the copy timeout; *ret from the reply. */
static int
agent_post(struct manager *m, const struct backend_env *env, const char *path,
	const char *key, const char *value, struct volume_info *ret, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	char body[160];
	int r;

	snprintf(body, sizeof body, "{\"%s\":\"%s\"}", key, value);
	r = agent_call(env->agent, "POST", path, body, strlen(body), copy_timeout(m), &rep,
		err);
	if (r >= 0)
		fill_volume_info(rep.json, ret);
	else if (rep.status == 404 && !strcmp(err->code, "not_found"))
		r = -ENOENT;
	agent_reply_release(&rep);
	return r;
}

int
snapshots_agent_copy(struct manager *m, const struct backend_env *env, const char *bid,
	const char *vid, const char *src, bool replace, struct volume_info *ret,
	struct nq_error *err)
{
	struct backend *b = registry_get(m->reg, bid);
	char path[256];

	if (!b)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"the storage backend %.64s was removed", bid);
	snprintf(path, sizeof path, "/v1/storage/%s/volumes/%s/%s/%s", b->ops->kind, b->id,
		vid, replace ? "revert" : "copy");
	backend_unref(b);
	return agent_post(m, env, path, "source_volume_id", src, ret, err);
}

/* The snapshot row sid of vm on the VM's backend, state provisioning, under
 * the backend's claim (a backend DELETE cannot slip in). */
static int
insert_row(struct manager *m, const struct vm_row *vm, const char *sid, const char *name,
	struct nq_error *err)
{
	char key[CLAIM_KEY_MAX], now[24];
	struct backend *b;
	int r;

	claim_key(key, "backend", vm->backend_id);
	if ((r = claim_try(key, "the storage backend", err)) < 0)
		return r;
	b = registry_get(m->reg, vm->backend_id);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	const char *p[] = { sid, vm->backend_id, now, vm->id, name };
	r = b ? db_exec(m->db,
			"INSERT INTO volumes (id, backend_id, vm_id, path, size_bytes,"
			" allocated_bytes, state, created_at, snapshot_of, name) VALUES"
			" ($1, $2, NULL, '', 0, NULL, 'provisioning', $3, $4, $5)",
			5, p, NULL)
	      : -EBUSY;
	backend_unref(b);
	claim_release(key);
	if (r == -EEXIST)
		return nq_error_setr(err, r, "name_taken", SNAPSHOT_NAME_FIELD,
			"VM %s has a snapshot named %s already", vm->id, name);
	if (r == -EBUSY)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"the VM's storage backend was removed");
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	return 0;
}

/* The agent of the VM's host copies its disk (pausing it when it runs);
 * one that does not know the VM copies the volume directly. */
static int
take(struct manager *m, const struct vm_row *vm, const char *disk, const char *sid,
	struct volume_info *vi, struct nq_error *err)
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	char path[128];
	int r;

	if ((r = vms_env(m, vm, &env, err)) < 0)
		return r;
	snprintf(path, sizeof path, "/v1/vms/%s/snapshot", vm->id);
	r = agent_post(m, &env, path, "volume_id", sid, vi, err);
	if (r == -ENOENT) {
		memset(err, 0, sizeof *err);
		r = snapshots_agent_copy(m, &env, vm->backend_id, sid, disk, false, vi,
			err);
	}
	if (r < 0) {
		struct nq_error ignore = { 0 };
		struct backend *b = registry_get(m->reg, vm->backend_id);
		if (b)
			(void)b->ops->delete_volume(&env, b->id, b->cfg, sid, &ignore);
		backend_unref(b);
	}
	return r;
}

static int
create_claimed(struct manager *m, const char *vm_id, const char *name, const char *sid,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 }, vrows = { 0 };
	struct volume_info vi = { 0 };
	struct volume_row vol;
	struct vm_row vm;
	const char *p[] = { sid };
	int r;

	r = vms_fetch(m, vm_id, &rows, &vm);
	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no VM with id %.64s",
			vm_id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (vms_fetch_volume(m, vm_id, &vrows, &vol) < 0 || strcmp(vol.state, "ready") ||
		!strcmp(vm.state, "provisioning") || !strcmp(vm.state, "migrating"))
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"VM %s has no finished disk to snapshot (state %s)", vm_id,
			vm.state);
	if ((r = insert_row(m, &vm, sid, name, err)) < 0)
		return r;
	r = take(m, &vm, vol.id, sid, &vi, err);
	if (r >= 0 && vms_volume_ready(m, sid, &vi) < 0)
		r = nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (r < 0) {
		(void)db_exec(m->db, "DELETE FROM volumes WHERE id = $1", 1, p, NULL);
		return r;
	}
	log_info("snapshot created id=%s vm=%s name=%s size=%" PRIu64, sid, vm_id, name,
		vi.size_bytes);
	events_record(m, "api", "snapshot.created", "vm", vm_id,
		vm.has_host ? vm.host_id : NULL, "ok", name);
	return 0;
}

int
snapshots_create(struct manager *m, const char *vm_id, const char *name,
	char ret_id[AUTH_UUID_LEN + 1], struct nq_error *err)
{
	char key[CLAIM_KEY_MAX], skey[CLAIM_KEY_MAX], sid[AUTH_UUID_LEN + 1];
	int r;

	if (validate_name(SNAPSHOT_NAME_FIELD, name, err) < 0)
		return -EINVAL; /* 400 invalid_field naming the field */
	claim_key(key, "vm", vm_id);
	if ((r = claim_try(key, "the VM", err)) < 0)
		return r;
	auth_new_uuid(sid);
	/* Held until the row is settled: recovery leaves it alone. */
	claim_key(skey, "volume", sid);
	(void)claim_try(skey, "the snapshot", NULL);
	r = create_claimed(m, vm_id, name, sid, err);
	claim_release(skey);
	claim_release(key);
	if (r >= 0)
		snprintf(ret_id, AUTH_UUID_LEN + 1, "%s", sid);
	return r;
}
