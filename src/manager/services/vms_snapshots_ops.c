/* Snapshots (vms_snapshots.h): delete (one, or all of a VM being
 * deleted), revert, and the copy out of a snapshot for a VM made from
 * it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
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

/* Hold "volume:<sid>": a copy out of the snapshot or its delete. */
static int
claim_snapshot(struct manager *m, const char *sid, char key[CLAIM_KEY_MAX],
	struct nq_error *err)
{
	claim_key(key, "volume", sid);
	return claim_wait(key, copy_timeout(m), "the snapshot", err);
}

/* The file on the backend, then the row; the caller holds the VM. */
static int
delete_one(struct manager *m, const struct backend_env *env, const char *vm_id,
	const char *sid, const char *bid, const char *name, struct nq_error *err)
{
	char key[CLAIM_KEY_MAX];
	const char *p[] = { sid };
	struct backend *b;
	int r;

	if ((r = claim_snapshot(m, sid, key, err)) < 0)
		return r;
	b = registry_get(m->reg, bid);
	r = b ? b->ops->delete_volume(env, b->id, b->cfg, sid, err) : 0;
	backend_unref(b);
	if (r >= 0 && db_exec(m->db, "DELETE FROM volumes WHERE id = $1", 1, p, NULL) < 0)
		r = nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	claim_release(key);
	if (r < 0)
		return r;
	log_info("snapshot deleted id=%s vm=%s", sid, vm_id);
	events_record(m, "api", "snapshot.deleted", "vm", vm_id, NULL, "ok", name);
	return 0;
}

static int
delete_claimed(struct manager *m, const char *vm_id, const char *sid, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 }, srows = { 0 };
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct vm_row vm;
	int r = vms_fetch(m, vm_id, &rows, &vm);

	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no VM with id %.64s",
			vm_id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if ((r = snapshots_fetch(m, vm_id, sid, NULL, &srows, err)) < 0 ||
		(r = vms_env(m, &vm, &env, err)) < 0)
		return r;
	return delete_one(m, &env, vm_id, sid, db_rows_get(&srows, 0, 1) ?: "",
		db_rows_get(&srows, 0, 3), err);
}

int
snapshots_delete(struct manager *m, const char *vm_id, const char *sid,
	struct nq_error *err)
{
	char key[CLAIM_KEY_MAX];
	int r;

	claim_key(key, "vm", vm_id);
	if ((r = claim_try(key, "the VM", err)) < 0)
		return r;
	r = delete_claimed(m, vm_id, sid, err);
	claim_release(key);
	return r;
}

int
snapshots_delete_all(struct manager *m, const struct vm_row *vm,
	const struct backend_env *env, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { vm->id };
	int r = db_query(m->db,
		"SELECT " SNAPSHOT_COLS " FROM volumes WHERE snapshot_of = $1", 1, p,
		&rows);

	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	for (unsigned i = 0; r >= 0 && i < rows.nrows; i++)
		r = delete_one(m, env, vm->id, db_rows_get(&rows, i, 0) ?: "",
			db_rows_get(&rows, i, 1) ?: "", db_rows_get(&rows, i, 3), err);
	return r;
}

static int
revert_claimed(struct manager *m, const char *vm_id, const char *sid, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 }, vrows = { 0 }, srows = { 0 };
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct volume_info vi = { 0 };
	char key[CLAIM_KEY_MAX];
	struct volume_row vol;
	struct vm_row vm;
	int r = vms_fetch(m, vm_id, &rows, &vm);

	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no VM with id %.64s",
			vm_id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (strcmp(vm.state, "stopped"))
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"VM %s is %s: stop it before reverting its disk", vm_id, vm.state);
	if ((r = snapshots_fetch(m, vm_id, sid, "snapshot_id", &srows, err)) < 0)
		return r;
	if (strcmp(db_rows_get(&srows, 0, 6) ?: "", "ready"))
		return nq_error_setr(err, -EBUSY, "invalid_state", "snapshot_id",
			"snapshot %s is not ready", sid);
	if (vms_fetch_volume(m, vm_id, &vrows, &vol) < 0 || strcmp(vol.state, "ready"))
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"VM %s has no finished disk", vm_id);
	if ((r = vms_env(m, &vm, &env, err)) < 0 ||
		(r = claim_snapshot(m, sid, key, err)) < 0)
		return r;
	r = snapshots_agent_copy(m, &env, vol.backend_id, vol.id, sid, true, &vi, err);
	claim_release(key);
	if (r < 0)
		return r;
	if (vms_volume_ready(m, vol.id, &vi) < 0)
		log_warn("cannot record the reverted disk's size vm=%s", vm_id);
	log_info("VM reverted id=%s snapshot=%s", vm_id, sid);
	events_record(m, "api", "vm.reverted", "vm", vm_id,
		vm.has_host ? vm.host_id : NULL, "ok", db_rows_get(&srows, 0, 3));
	return 0;
}

int
snapshots_revert(struct manager *m, const char *vm_id, const char *sid,
	struct nq_error *err)
{
	char key[CLAIM_KEY_MAX];
	int r;

	claim_key(key, "vm", vm_id);
	if ((r = claim_try(key, "the VM", err)) < 0)
		return r;
	r = revert_claimed(m, vm_id, sid, err);
	claim_release(key);
	return r;
}

int
snapshots_source(struct manager *m, const char *sid, struct snapshot_source *ret,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows srows = { 0 }, rows = { 0 };
	struct snapshot_source s = { 0 };
	struct vm_row vm;
	int r = snapshots_fetch(m, NULL, sid, "source_snapshot_id", &srows, err);

	if (r < 0) {
		if (r == -ENOENT)
			snprintf(err->code, sizeof err->code, "%s", "invalid_field");
		return r;
	}
	if (strcmp(db_rows_get(&srows, 0, 6) ?: "", "ready"))
		return nq_error_setr(err, -EBUSY, "invalid_state", "source_snapshot_id",
			"snapshot %s is not ready", sid);
	if (vms_fetch(m, db_rows_get(&srows, 0, 2) ?: "", &rows, &vm) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	snprintf(s.backend_id, sizeof s.backend_id, "%s", db_rows_get(&srows, 0, 1) ?: "");
	snprintf(s.vm_id, sizeof s.vm_id, "%s", vm.id);
	snprintf(s.host_id, sizeof s.host_id, "%s", vm.has_host ? vm.host_id : "");
	snprintf(s.image_id, sizeof s.image_id, "%s", vm.image_id);
	*ret = s;
	return 0;
}

int
snapshots_copy_to(struct manager *m, const struct backend_env *env, const char *sid,
	const char *vid, struct volume_info *ret, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	char key[CLAIM_KEY_MAX];
	int r;

	if ((r = claim_snapshot(m, sid, key, err)) < 0)
		return r;
	r = snapshots_fetch(m, NULL, sid, "source_snapshot_id", &rows, err);
	if (r >= 0)
		r = snapshots_agent_copy(m, env, db_rows_get(&rows, 0, 1) ?: "", vid, sid,
			false, ret, err);
	claim_release(key);
	return r;
}
