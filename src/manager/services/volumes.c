/* Volumes: rows in `volumes`, files on the backends. Creation writes the
 * row first (state provisioning, under the backend's claim so that a
 * backend DELETE cannot slip in between), then asks the backend, with the
 * volume claimed; a manager that dies in between leaves a row its
 * recovery settles (vms_recover.c). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "manager/db/rows.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/metrics.h"
#include "manager/services/claims.h"
#include "manager/services/hostpool.h"
#include "manager/services/vms.h"
#include "manager/services/volumes.h"

static json_t *
volume_json(const struct volume_row *v)
{
	return json_pack("{s:s, s:s, s:o, s:s, s:I, s:o, s:s}", "id", v->id, "backend_id",
		v->backend_id, "vm_id", v->has_vm ? json_string(v->vm_id) : json_null(),
		"path", v->path, "size_bytes", (json_int_t)v->size_bytes, "allocated_bytes",
		v->has_allocated ? json_integer((json_int_t)v->allocated_bytes)
				 : json_null(),
		"state", v->state);
}

/* The volume row id into *rows and *ret (pointing into rows). */
static int
fetch_volume(struct manager *m, const char *id, struct db_rows *rows,
	struct volume_row *ret)
{
	const char *p[] = { id };
	int r = db_query(m->db, "SELECT " VOLUME_ROW_COLS " FROM volumes WHERE id = $1", 1,
		p, rows);

	if (r >= 0 && rows->nrows == 0)
		return -ENOENT;
	return r < 0 ? r : volume_row_read(rows, 0, ret);
}

json_t *
volumes_query_json(struct manager *m, const char *sql, unsigned nparams,
	const char *const *params, json_t *(*each)(const struct volume_row *v))
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct volume_row v;
	json_t *arr;

	if (db_query(m->db, sql, nparams, params, &rows) < 0)
		return NULL;
	arr = json_array();
	for (unsigned i = 0; arr && i < rows.nrows; i++) {
		if (volume_row_read(&rows, i, &v) < 0) {
			json_decref(arr);
			return NULL;
		}
		json_array_append_new(arr, each(&v));
	}
	return arr;
}

json_t *
volumes_list_json(struct manager *m)
{
	return volumes_query_json(m,
		"SELECT " VOLUME_ROW_COLS " FROM volumes"
		" WHERE state <> 'error' ORDER BY created_at, id",
		0, NULL, volume_json);
}

json_t *
volumes_get_json(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct volume_row v;
	int r = fetch_volume(m, id, &rows, &v);

	if (r == -ENOENT) {
		nq_error_set(err, "not_found", NULL, "no volume with id %.64s", id);
		return NULL;
	}
	if (r < 0) {
		nq_error_set(err, "internal_error", NULL, "database error");
		return NULL;
	}
	return volume_json(&v);
}

static int
insert_row(struct manager *m, const char *backend_id, const char *vid,
	unsigned long long size, struct nq_error *err)
{
	char key[CLAIM_KEY_MAX], now[24], sz[24];
	struct backend *b;
	int r;

	claim_key(key, "backend", backend_id);
	r = claim_try(key, "the storage backend", err);
	if (r < 0)
		return r;
	b = registry_get(m->reg, backend_id);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	snprintf(sz, sizeof sz, "%llu", size);
	const char *p[] = { vid, backend_id, sz, now };
	r = b ? db_exec(m->db,
			"INSERT INTO volumes (id, backend_id, vm_id, path, size_bytes,"
			" allocated_bytes, state, created_at) VALUES ($1, $2, NULL, '', $3, NULL,"
			" 'provisioning', $4)",
			4, p, NULL)
	      : -ENOENT;
	backend_unref(b);
	claim_release(key);
	if (r == -ENOENT || r == -EBUSY)
		return nq_error_setr(err, -ENOENT, "invalid_field", "backend_id",
			"no backend with id %.64s", backend_id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	return 0;
}

int
volumes_create(struct manager *m, const char *backend_id, const char *image,
	unsigned long long size, char vid[AUTH_UUID_LEN + 1], struct nq_error *err)
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct volume_info vi = { 0 };
	struct nq_error ignore = { 0 };
	char key[CLAIM_KEY_MAX];
	const char *p[] = { vid };
	struct backend *b;
	int r;

	b = registry_get(m->reg, backend_id);
	if (!b)
		return nq_error_setr(err, -ENOENT, "invalid_field", "backend_id",
			"no backend with id %.64s", backend_id);
	r = hosts_env_for_backend(m, backend_id, &env, err);
	if (r < 0) {
		backend_unref(b);
		return r;
	}
	auth_new_uuid(vid);
	claim_key(key, "volume", vid);
	(void)claim_try(key, "the volume", NULL); /* a new id: never busy */
	r = insert_row(m, backend_id, vid, size, err);
	if (r >= 0) {
		double t0 = metrics_now();
		r = b->ops->provision_volume(&env, b->id, b->cfg, vid, image, size, &vi,
			err);
		if (r >= 0 && image)
			metrics_clone_observe(b->id, metrics_now() - t0);
		if (r >= 0) {
			if (!vi.size_bytes)
				vi.size_bytes = size;
			r = vms_volume_ready(m, vid, &vi);
			if (r < 0)
				nq_error_set(err, "internal_error", NULL, "database error");
		}
		if (r < 0) {
			b->ops->delete_volume(&env, b->id, b->cfg, vid, &ignore);
			(void)db_exec(m->db, "DELETE FROM volumes WHERE id = $1", 1, p,
				NULL);
		} else {
			log_info("volume created id=%s backend=%s", vid, b->id);
		}
	}
	claim_release(key);
	backend_unref(b);
	return r;
}

static int
delete_claimed(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };
	struct volume_row v;
	struct backend *b;
	int r;

	r = fetch_volume(m, id, &rows, &v);
	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no volume with id %.64s",
			id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (v.has_vm)
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"the volume is attached to VM %s", v.vm_id);
	b = registry_get(m->reg, v.backend_id);
	if (b) {
		struct backend_env env = { 0 };
		r = hosts_env_for_volume(m, id, &env, err);
		if (r >= 0)
			r = b->ops->delete_volume(&env, b->id, b->cfg, id, err);
		hosts_env_release(&env);
		backend_unref(b);
		if (r < 0)
			return r;
	}
	r = db_exec(m->db, "DELETE FROM volumes WHERE id = $1", 1, p, NULL);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	log_info("volume deleted id=%s", id);
	return 0;
}

int
volumes_delete(struct manager *m, const char *id, struct nq_error *err)
{
	char key[CLAIM_KEY_MAX];
	int r;

	claim_key(key, "volume", id);
	r = claim_try(key, "the volume", err);
	if (r < 0)
		return r;
	r = delete_claimed(m, id, err);
	claim_release(key);
	return r;
}
