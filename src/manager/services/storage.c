/* Storage backends: the service behind routes_storage.c. Each mutation
 * runs in the order validate → agent → database → registry and undoes the
 * agent side when a later step fails. A PATCH or DELETE claims its backend
 * (claims.h): a second operation on the same backend gets 409 "busy", and
 * no lock shared with other backends or VMs is held across an agent call,
 * so a hung SMB server delays only operations on its own backend. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "manager/auth/auth.h"
#include "manager/services/claims.h"
#include "common/debug_gate.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "manager/db/rows.h"
#include "manager/manager.h"
#include "manager/services/storage.h"
#include "common/validate.h"

/* jansson provides json_decrefp. */
#define _cleanup_json_ _cleanup_(json_decrefp)

static void
now_str(char buf[24])
{
	snprintf(buf, 24, "%lld", (long long)time(NULL));
}

static void
claim_releasep(char (*key)[CLAIM_KEY_MAX])
{
	if ((*key)[0])
		claim_release(*key);
}
#define _cleanup_claim_ _cleanup_(claim_releasep)

/* Rendered config for the database: the API form, which never holds a
 * password. */
static char *
config_text(struct manager *m, const struct backend_ops *ops, const void *cfg)
{
	json_t *j = ops->to_json(&m->env, cfg);
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	return s;
}

static int
publish(struct manager *m, const char *id, const char *name,
	const struct backend_ops *ops, const void *cfg)
{
	struct backend *b = NULL;
	int r = backend_new(id, name, ops, cfg, ops->uses_password(cfg), &b);

	if (r < 0)
		return r;
	r = registry_put(m->reg, b);
	backend_unref(b);
	return r;
}

static int
load_row(struct manager *m, const struct db_rows *rows, unsigned i)
{
	const char *id = db_rows_get(rows, i, 0), *name = db_rows_get(rows, i, 1);
	const char *kind = db_rows_get(rows, i, 2), *conf = db_rows_get(rows, i, 3);
	const char *def = db_rows_get(rows, i, 4);
	const struct backend_ops *ops = kind ? backend_ops_find(kind) : NULL;
	struct secret *ignore = NULL;
	struct nq_error err = { 0 };
	_cleanup_free_ void *cfg = NULL;
	_cleanup_json_ json_t *j = NULL;
	int r;

	if (!id || !name || !ops || !conf) {
		log_error("skipping backend with unknown kind id=%s kind=%s", id ?: "-",
			kind ?: "-");
		return 0;
	}
	j = json_loads(conf, JSON_REJECT_DUPLICATES, NULL);
	cfg = calloc(1, ops->cfg_size);
	if (!cfg)
		return -ENOMEM;
	r = ops->parse(&m->env, PARSE_LOAD, j, NULL, cfg, &ignore, &err);
	secret_free(ignore);
	if (r < 0) {
		log_error("skipping backend with invalid stored config id=%s field=%s",
			id, err.field);
		return 0;
	}
	r = publish(m, id, name, ops, cfg);
	if (r >= 0 && def && strcmp(def, "1") == 0)
		registry_set_default(m->reg, id);
	return r;
}

int
storage_load(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	char now[24], def[BACKEND_ID_MAX + 1];
	int r;

	now_str(now);
	const char *p[] = { BACKEND_DEFAULT_ID, now };
	r = db_exec(m->db,
		"INSERT INTO backends (id, name, kind, config, has_password, is_default,"
		" created_at, updated_at) VALUES ($1, $1, 'localfile', '{}', 0, 0, $2, $2)"
		" ON CONFLICT DO NOTHING", 2, p, NULL);
	if (r < 0)
		return r;
	r = db_exec(m->db,
		"UPDATE backends SET is_default = 1 WHERE id = $1 AND NOT EXISTS"
		" (SELECT 1 FROM backends WHERE is_default = 1)", 1, p, NULL);
	if (r < 0)
		return r;
	r = db_query(m->db, "SELECT id, name, kind, config, is_default FROM backends",
		0, NULL, &rows);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < rows.nrows; i++) {
		r = load_row(m, &rows, i);
		if (r < 0)
			return r;
	}
	registry_default(m->reg, def, sizeof def);
	log_info("registry loaded backends=%zu default=%s", registry_count(m->reg), def);
	return 0;
}

const char *
storage_status_of(const char *code)
{
	static const struct { const char *code, *status; } map[] = {
		{ "agent_unavailable", "unreachable" },
		{ "smb_unreachable", "unreachable" },
		{ "smb_timeout", "unreachable" },
		{ "smb_auth_failed", "auth_failed" },
		{ "smb_cred_missing", "auth_failed" },
		{ "smb_access_denied", "access_denied" },
		{ "smb_share_not_found", "not_found" },
		{ "smb_not_writable", "not_writable" },
		{ "not_writable", "not_writable" },
		{ "no_space", "full" },
		{ "busy", "busy" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(map[i].code, code) == 0)
			return map[i].status;
	return "error";
}

void
storage_refresh_one(struct manager *m, struct backend *b)
{
	struct backend_status st = { 0 };
	struct nq_error err = { 0 };
	struct timespec ts;
	int r;

	r = b->ops->capacity(&m->env, b->id, b->cfg, false, &st.cap, &err);
	if (r == -ENOENT) {
		/* The agent lost the mount. Re-establish it under the backend's
		 * claim, and only if the backend still exists; an operation that
		 * holds the claim right now (a PATCH, a DELETE) decides instead. */
		char key[CLAIM_KEY_MAX];
		claim_key(key, "backend", b->id);
		if (claim_try(key, "the backend", NULL) >= 0) {
			struct backend *cur = registry_get(m->reg, b->id);
			if (cur) {
				memset(&err, 0, sizeof err);
				r = cur->ops->capacity(&m->env, cur->id, cur->cfg, true,
					&st.cap, &err);
				if (r >= 0)
					log_info("backend re-attached on the agent id=%s", b->id);
			}
			backend_unref(cur);
			claim_release(key);
		} else {
			nq_error_set(&err, "busy", NULL, "the backend is not attached on the "
				"agent; it is re-attached once the running operation ends");
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	st.checked_at = ts.tv_sec ? ts.tv_sec : 1;
	if (r >= 0) {
		snprintf(st.status, sizeof st.status, "ok");
		st.have_capacity = true;
	} else {
		snprintf(st.code, sizeof st.code, "%s", err.code[0] ? err.code : "agent_unavailable");
		snprintf(st.status, sizeof st.status, "%s", storage_status_of(st.code));
		snprintf(st.message, sizeof st.message, "%s", err.message);
	}
	registry_set_status(m->reg, b->id, &st);
}

json_t *
storage_backend_json(struct manager *m, const struct registry_item *it,
	long long volume_count)
{
	const struct backend *b = it->b;
	json_t *o, *cap = json_null();

	if (it->st.have_capacity)
		cap = json_pack("{s:I, s:I, s:I}",
			"total_bytes", (json_int_t)it->st.cap.total_bytes,
			"used_bytes", (json_int_t)it->st.cap.used_bytes,
			"free_bytes", (json_int_t)it->st.cap.free_bytes);
	o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:o, s:b, s:o, s:I}",
		"id", b->id, "name", b->name, "kind", b->ops->kind,
		"is_default", it->is_default, "status", it->st.status,
		"config", b->ops->to_json(&m->env, b->cfg),
		"has_password", b->has_password, "capacity", cap,
		"volume_count", (json_int_t)volume_count);
	if (o && it->st.code[0])
		json_object_set_new(o, "status_error", json_pack("{s:s, s:s}",
			"code", it->st.code, "message", it->st.message));
	return o;
}

json_t *
storage_volume_counts(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	json_t *o = json_object();

	if (!o || db_query(m->db, "SELECT backend_id, COUNT(*) FROM volumes"
			" GROUP BY backend_id", 0, NULL, &rows) < 0) {
		json_decref(o);
		return NULL;
	}
	for (unsigned i = 0; i < rows.nrows; i++) {
		const char *bid = db_rows_get(&rows, i, 0), *n = db_rows_get(&rows, i, 1);
		if (bid && n)
			json_object_set_new(o, bid, json_integer(strtoll(n, NULL, 10)));
	}
	return o;
}

json_t *
storage_backend_volumes(struct manager *m, const char *id)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };
	json_t *a;

	if (db_query(m->db, "SELECT " VOLUME_ROW_COLS " FROM volumes WHERE backend_id = $1"
		    " ORDER BY id", 1, p, &rows) < 0)
		return NULL;
	a = json_array();
	for (unsigned i = 0; a && i < rows.nrows; i++) {
		struct volume_row v;
		if (volume_row_read(&rows, i, &v) < 0) {
			json_decref(a);
			return NULL;
		}
		json_array_append_new(a, json_string(v.id));
	}
	return a;
}

static int
name_taken(struct manager *m, const char *name, const char *except_id,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { name, except_id ? except_id : "" };
	int r;

	r = db_query(m->db, "SELECT id FROM backends WHERE name = $1 AND id <> $2",
		2, p, &rows);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (rows.nrows > 0)
		return nq_error_setr(err, -EEXIST, "name_taken", "name",
			"a backend named '%s' already exists", name);
	return 0;
}

/* Inside an open transaction. */
static int
clear_default(struct manager *m)
{
	return db_exec(m->db, "UPDATE backends SET is_default = 0 WHERE is_default = 1",
		0, NULL, NULL);
}

int
storage_create(struct manager *m, const struct backend_create *bc,
	char ret_id[BACKEND_ID_MAX + 1], struct nq_error *err)
{
	_cleanup_secret_ struct secret *secret = NULL;
	_cleanup_free_ void *cfg = NULL;
	_cleanup_free_ char *conf = NULL;
	struct nq_error ignore = { 0 };
	char id[AUTH_UUID_LEN + 1], now[24];
	int r;

	r = validate_name("name", bc->name, err);
	if (r < 0)
		return r;
	cfg = calloc(1, bc->ops->cfg_size);
	if (!cfg)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	r = bc->ops->parse(&m->env, PARSE_CREATE, bc->config, NULL, cfg, &secret, err);
	if (r < 0)
		return r;
	conf = config_text(m, bc->ops, cfg);
	if (!conf)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");

	/* A new id: nobody else can touch this backend before it is
	 * published, so nothing is claimed; the name is unique in the
	 * database, which settles two creates racing for one name. */
	r = name_taken(m, bc->name, NULL, err);
	if (r < 0)
		return r;
	auth_new_uuid(id);
	r = bc->ops->create(&m->env, id, cfg, secret, err);
	if (r < 0) {
		log_info("backend create refused name=%s kind=%s code=%s", bc->name,
			bc->ops->kind, err->code);
		return r;
	}

	now_str(now);
	const char *p[] = { id, bc->name, bc->ops->kind, conf,
		bc->ops->uses_password(cfg) ? "1" : "0", bc->make_default ? "1" : "0", now };
	r = db_begin(m->db);
	if (r >= 0) {
		if (bc->make_default)
			r = clear_default(m);
		if (r >= 0)
			r = db_exec(m->db, "INSERT INTO backends (id, name, kind, config,"
				" has_password, is_default, created_at, updated_at)"
				" VALUES ($1, $2, $3, $4, $5, $6, $7, $7)", 7, p, NULL);
		if (r >= 0)
			r = db_commit(m->db);
		if (r < 0)
			db_rollback(m->db);
	}
	if (r < 0) {
		bc->ops->destroy(&m->env, id, cfg, &ignore);
		if (r == -EEXIST)
			return nq_error_setr(err, r, "name_taken", "name",
				"a backend named '%s' already exists", bc->name);
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	}
	r = publish(m, id, bc->name, bc->ops, cfg);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "out of memory");
	if (bc->make_default)
		registry_set_default(m->reg, id);
	log_info("backend created id=%s name=%s kind=%s", id, bc->name, bc->ops->kind);
	debug_gate("backend-created", NULL, NULL);

	struct backend *b = registry_get(m->reg, id);
	if (b) {
		storage_refresh_one(m, b);
		backend_unref(b);
	}
	memcpy(ret_id, id, sizeof id);
	return 0;
}

static int
volumes_guard(struct manager *m, const char *id, const char *why,
	json_t **ret_volumes, struct nq_error *err)
{
	json_t *vols = storage_backend_volumes(m, id);

	if (!vols)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (json_array_size(vols) == 0) {
		json_decref(vols);
		return 0;
	}
	nq_error_set(err, "backend_in_use", NULL, "%zu volume(s) live on this backend; %s",
		json_array_size(vols), why);
	if (ret_volumes)
		*ret_volumes = vols;
	else
		json_decref(vols);
	return -EBUSY;
}

int
storage_update(struct manager *m, const char *id, const struct backend_update *bu,
	struct nq_error *err)
{
	_cleanup_secret_ struct secret *secret = NULL, *ignore_pw = NULL;
	_cleanup_(backend_unrefp) struct backend *old = NULL;
	_cleanup_claim_ char key[CLAIM_KEY_MAX] = "";
	_cleanup_free_ void *cfg = NULL;
	_cleanup_free_ char *conf = NULL;
	struct nq_error ignore = { 0 };
	char now[24];
	int r = 0;

	if (bu->name && (r = validate_name("name", bu->name, err)) < 0)
		return r;
	if (bu->rotate_password && bu->rotate_password[0]) {
		size_t n = strlen(bu->rotate_password);
		r = validate_password("rotate_password", bu->rotate_password, n, err);
		if (r < 0)
			return r;
		if (secret_new(bu->rotate_password, n, &secret) < 0)
			return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	}
	old = registry_get(m->reg, id);
	if (!old)
		return nq_error_setr(err, -ENOENT, "not_found", NULL, "no backend with id %s", id);
	claim_key(key, "backend", id);
	r = claim_try(key, "the backend", err);
	if (r < 0) {
		key[0] = '\0';
		return r;
	}
	/* Reread under the claim: a PATCH that finished just before ours
	 * published a new instance. */
	backend_unref(old);
	old = registry_get(m->reg, id);
	if (!old)
		return nq_error_setr(err, -ENOENT, "not_found", NULL, "no backend with id %s", id);
	cfg = malloc(old->ops->cfg_size);
	if (!cfg)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	memcpy(cfg, old->cfg, old->ops->cfg_size);
	if (bu->config) {
		memset(cfg, 0, old->ops->cfg_size);
		r = old->ops->parse(&m->env, PARSE_UPDATE, bu->config, old->cfg, cfg,
			&ignore_pw, err);
		if (r < 0)
			return r;
	}
	const char *name = bu->name ? bu->name : old->name;
	if (bu->name && (r = name_taken(m, bu->name, id, err)) < 0)
		return r;
	if (strcmp(id, BACKEND_DEFAULT_ID) == 0 && (bu->config || bu->name))
		return nq_error_setr(err, -EPERM, "conflict", NULL,
			"the built-in backend %s cannot be changed", id);
	bool remount = old->ops->mount_differs(old->cfg, cfg);
	bool recreds = old->ops->creds_differ(old->cfg, cfg);
	if (remount && (r = volumes_guard(m, id,
			"the mount cannot change under them", NULL, err)) < 0)
		return r;
	if (old->ops->uses_password(cfg) && !old->ops->uses_password(old->cfg) && !secret)
		return nq_error_set(err, "missing_field", "rotate_password",
			"rotate_password is required when a guest backend gets a username");
	if (secret && !old->ops->uses_password(cfg))
		return nq_error_set(err, "invalid_field", "rotate_password",
			"a backend without a username has no password to rotate");

	if (remount || recreds)
		r = old->ops->reconfigure(&m->env, id, old->cfg, cfg, secret, err);
	else if (secret)
		r = old->ops->rotate_secret(&m->env, id, cfg, secret, err);
	if (r < 0)
		return r;

	conf = config_text(m, old->ops, cfg);
	now_str(now);
	const char *p[] = { id, name, conf, old->ops->uses_password(cfg) ? "1" : "0", now };
	r = conf ? db_begin(m->db) : -ENOMEM;
	if (r >= 0) {
		if (bu->make_default)
			r = clear_default(m);
		if (r >= 0)
			r = db_exec(m->db, "UPDATE backends SET name = $2, config = $3,"
				" has_password = $4, updated_at = $5 WHERE id = $1", 5, p, NULL);
		if (r >= 0 && bu->make_default)
			r = db_exec(m->db, "UPDATE backends SET is_default = 1 WHERE id = $1",
				1, p, NULL);
		if (r >= 0)
			r = db_commit(m->db);
		if (r < 0)
			db_rollback(m->db);
	}
	if (r < 0) {
		if (remount || recreds)
			old->ops->reconfigure(&m->env, id, cfg, old->cfg, NULL, &ignore);
		if (r == -EEXIST)
			return nq_error_setr(err, r, "name_taken", "name",
				"a backend named '%s' already exists", name);
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	}
	r = publish(m, id, name, old->ops, cfg);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "out of memory");
	if (bu->make_default)
		registry_set_default(m->reg, id);
	log_info("backend updated id=%s remount=%d rotated=%d default=%d", id, remount,
		secret != NULL, bu->make_default);
	if (remount) {
		struct backend *b = registry_get(m->reg, id);
		if (b) {
			storage_refresh_one(m, b);
			backend_unref(b);
		}
	}
	return 0;
}

int
storage_delete(struct manager *m, const char *id, json_t **ret_volumes,
	struct nq_error *err)
{
	_cleanup_(backend_unrefp) struct backend *b = NULL;
	_cleanup_claim_ char key[CLAIM_KEY_MAX] = "";
	char def[BACKEND_ID_MAX + 1];
	const char *p[] = { id };
	int r;

	claim_key(key, "backend", id);
	r = claim_try(key, "the backend", err);
	if (r < 0) {
		key[0] = '\0';
		return r;
	}
	b = registry_get(m->reg, id);
	if (!b)
		return nq_error_setr(err, -ENOENT, "not_found", NULL, "no backend with id %s", id);
	registry_default(m->reg, def, sizeof def);
	if (strcmp(def, id) == 0)
		return nq_error_setr(err, -EBUSY, "backend_is_default", NULL,
			"the default backend cannot be removed; make another backend the default first");
	if (strcmp(id, BACKEND_DEFAULT_ID) == 0)
		return nq_error_setr(err, -EPERM, "conflict", NULL,
			"the built-in backend %s cannot be removed", id);
	r = volumes_guard(m, id, "remove them first", ret_volumes, err);
	if (r < 0)
		return r;
	r = b->ops->destroy(&m->env, id, b->cfg, err);
	if (r < 0)
		return r;
	r = db_exec(m->db, "DELETE FROM backends WHERE id = $1", 1, p, NULL);
	if (r == -EBUSY)
		return nq_error_setr(err, r, "backend_in_use", NULL,
			"a VM or volume on this backend appeared while it was being removed");
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	registry_remove(m->reg, id);
	log_info("backend removed id=%s name=%s", id, b->name);
	return 0;
}
