/* /v1/volumes: volumes on storage backends. VMs (a later issue) will
 * create their rootfs volumes through the same service; for now the API
 * creates empty sparse volumes (or clones of an image) and deletes them. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "manager/auth/auth.h"
#include "common/json_util.h"
#include "manager/services/claims.h"
#include "common/log.h"
#include "manager/manager.h"
#include "common/validate.h"
#include "manager/services/vms.h"

#define VOLUME_SIZE_MAX (64ULL << 40) /* 64 TiB */
#define VOLUME_COLS "id, backend_id, vm_id, path, size_bytes, allocated_bytes, state"

static json_t *
volume_json(const struct db_rows *rows, unsigned i)
{
	const char *vm = db_rows_get(rows, i, 2), *alloc = db_rows_get(rows, i, 5);

	return json_pack("{s:s, s:s, s:o, s:s, s:I, s:o, s:s}",
		"id", db_rows_get(rows, i, 0), "backend_id", db_rows_get(rows, i, 1),
		"vm_id", vm ? json_string(vm) : json_null(),
		"path", db_rows_get(rows, i, 3),
		"size_bytes", (json_int_t)strtoll(db_rows_get(rows, i, 4), NULL, 10),
		"allocated_bytes", alloc ? json_integer(strtoll(alloc, NULL, 10)) : json_null(),
		"state", db_rows_get(rows, i, 6));
}

static int
fetch_volume(struct manager *m, const char *id, struct db_rows *ret)
{
	const char *p[] = { id };
	int r = db_query(m->db, "SELECT " VOLUME_COLS " FROM volumes WHERE id = $1",
		1, p, ret);

	if (r >= 0 && ret->nrows == 0) {
		db_rows_release(ret);
		return -ENOENT;
	}
	return r;
}

static void
list_volumes(struct http_request *req, struct http_response *resp)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct manager *m = req->userdata;
	json_t *arr;

	if (db_query(m->db, "SELECT " VOLUME_COLS " FROM volumes WHERE state <> 'error'"
		    " ORDER BY created_at, id",
		    0, NULL, &rows) < 0) {
		http_reply_errorf(resp, "internal_error", NULL, "database error");
		return;
	}
	arr = json_array();
	for (unsigned i = 0; arr && i < rows.nrows; i++)
		json_array_append_new(arr, volume_json(&rows, i));
	http_reply_json(resp, 200, arr);
}

static void
get_volume(struct http_request *req, struct http_response *resp)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	int r = fetch_volume(req->userdata, req->params[0], &rows);

	if (r == -ENOENT)
		http_reply_errorf(resp, "not_found", NULL, "no volume with id %.64s",
			req->params[0]);
	else if (r < 0)
		http_reply_errorf(resp, "internal_error", NULL, "database error");
	else
		http_reply_json(resp, 200, volume_json(&rows, 0));
}

/* The row first (state provisioning, under the backend's claim so that a
 * backend DELETE cannot slip in between), then the agent's work, with the
 * volume claimed; a manager that dies in between leaves a row its
 * recovery settles (vms_recover.c). */
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
	r = b ? db_exec(m->db, "INSERT INTO volumes (id, backend_id, vm_id, path, size_bytes,"
		" allocated_bytes, state, created_at) VALUES ($1, $2, NULL, '', $3, NULL,"
		" 'provisioning', $4)", 4, p, NULL) : -ENOENT;
	backend_unref(b);
	claim_release(key);
	if (r == -ENOENT || r == -EBUSY)
		return nq_error_setr(err, -ENOENT, "invalid_field", "backend_id",
			"no backend with id %.64s", backend_id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	return 0;
}

static int
do_create(struct manager *m, const char *backend_id, const char *image,
	unsigned long long size, char vid[AUTH_UUID_LEN + 1], struct nq_error *err)
{
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
	auth_new_uuid(vid);
	claim_key(key, "volume", vid);
	(void)claim_try(key, "the volume", NULL); /* a new id: never busy */
	r = insert_row(m, backend_id, vid, size, err);
	if (r >= 0) {
		r = b->ops->provision_volume(&m->env, b->id, b->cfg, vid, image, size, &vi, err);
		if (r >= 0) {
			if (!vi.size_bytes)
				vi.size_bytes = size;
			r = vms_volume_ready(m, vid, &vi);
			if (r < 0)
				nq_error_set(err, "internal_error", NULL, "database error");
		}
		if (r < 0) {
			b->ops->delete_volume(&m->env, b->id, b->cfg, vid, &ignore);
			(void)db_exec(m->db, "DELETE FROM volumes WHERE id = $1", 1, p, NULL);
		} else {
			log_info("volume created id=%s backend=%s", vid, b->id);
		}
	}
	claim_release(key);
	backend_unref(b);
	return r;
}

static void
create_volume(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "backend_id", "size_bytes", "image", NULL };
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct manager *m = req->userdata;
	struct nq_error err = { 0 };
	const char *backend_id = NULL, *image = NULL;
	unsigned long long size = 0;
	char vid[AUTH_UUID_LEN + 1];
	bool have_size = false;
	json_t *body = NULL;
	int r;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
	    json_req_string(body, "backend_id", &backend_id, &err) < 0 ||
	    json_get_string(body, "image", &image, &err) < 0 ||
	    json_get_u64(body, "size_bytes", &size, &have_size, &err) < 0)
		goto fail;
	if (image && validate_image_name("image", image, &err) < 0)
		goto fail;
	if (!image && (!have_size || size == 0)) {
		nq_error_set(&err, "missing_field", "size_bytes",
			"size_bytes (> 0) is required for an empty volume");
		goto fail;
	}
	if (size > VOLUME_SIZE_MAX) {
		nq_error_set(&err, "invalid_field", "size_bytes",
			"size_bytes must not exceed %llu", VOLUME_SIZE_MAX);
		goto fail;
	}
	r = do_create(m, backend_id, image, size, vid, &err);
	if (r < 0)
		goto fail;
	json_decref(body);
	if (fetch_volume(m, vid, &rows) < 0) {
		http_reply_errorf(resp, "internal_error", NULL, "database error");
		return;
	}
	http_reply_json(resp, 201, volume_json(&rows, 0));
	return;
fail:
	json_decref(body);
	http_reply_error(resp, &err);
}

static int
do_delete(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };
	struct backend *b;
	int r;

	r = fetch_volume(m, id, &rows);
	if (r == -ENOENT)
		return nq_error_setr(err, r, "not_found", NULL, "no volume with id %.64s", id);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (db_rows_get(&rows, 0, 2))
		return nq_error_setr(err, -EBUSY, "invalid_state", NULL,
			"the volume is attached to VM %s", db_rows_get(&rows, 0, 2));
	b = registry_get(m->reg, db_rows_get(&rows, 0, 1));
	if (b) {
		r = b->ops->delete_volume(&m->env, b->id, b->cfg, id, err);
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

static void
delete_volume(struct http_request *req, struct http_response *resp)
{
	struct manager *m = req->userdata;
	struct nq_error err = { 0 };
	int r;

	char key[CLAIM_KEY_MAX];

	claim_key(key, "volume", req->params[0]);
	r = claim_try(key, "the volume", &err);
	if (r >= 0) {
		r = do_delete(m, req->params[0], &err);
		claim_release(key);
	}
	if (r < 0)
		http_reply_error(resp, &err);
	else
		http_reply_empty(resp, 204);
}

const struct http_route volume_routes[] = {
	{ "GET", "/v1/volumes", list_volumes, 0, 0, NULL },
	{ "POST", "/v1/volumes", create_volume, 0, 0, NULL },
	{ "GET", "/v1/volumes/{id}", get_volume, 0, 0, NULL },
	{ "DELETE", "/v1/volumes/{id}", delete_volume, 0, 0, NULL },
};
const size_t volume_routes_count = sizeof volume_routes / sizeof volume_routes[0];
