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
#include "manager/services/backend_cache.h"
#include "manager/services/backend_hosts.h"
#include "manager/services/claims.h"
#include "manager/services/events.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "common/debug_gate.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "manager/db/rows.h"
#include "manager/manager.h"
#include "manager/services/metrics.h"
#include "manager/services/storage.h"
#include "manager/services/volumes.h"
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
publish(struct manager *m, const char *id, const char *name, const struct backend_ops *ops,
	const void *cfg)
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
		log_error("skipping backend with invalid stored config id=%s field=%s", id,
			err.field);
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
	const struct db_stmt steps[] = {
		{ "INSERT INTO backends (id, name, kind, config, has_password, is_default,"
		  " created_at, updated_at) VALUES ($1, $1, 'localfile', '{}', 0, 0, $2, $2)"
		  " ON CONFLICT DO NOTHING",
			2, p },
		{ "UPDATE backends SET is_default = 1 WHERE id = $1 AND NOT EXISTS"
		  " (SELECT 1 FROM backends WHERE is_default = 1)",
			1, p },
	};
	r = db_exec_all(m->db, steps, ARRAY_SIZE(steps));
	if (r < 0)
		return r;
	r = db_query(m->db, "SELECT id, name, kind, config, is_default FROM backends", 0,
		NULL, &rows);
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

json_t *
storage_capacity_json(const struct capacity *c)
{
	return json_pack("{s:I, s:I, s:I, s:I}", "total_bytes", (json_int_t)c->total_bytes,
		"used_bytes", (json_int_t)c->used_bytes, "available_bytes",
		(json_int_t)c->free_bytes, "free_bytes", (json_int_t)c->free_bytes);
}

json_t *
storage_backend_json(struct manager *m, const struct registry_item *it,
	long long volume_count)
{
	const struct backend *b = it->b;
	json_t *o, *cap = json_null();

	if (it->st.have_capacity)
		cap = storage_capacity_json(&it->st.cap);
	o = json_pack("{s:s, s:s, s:s, s:b, s:s, s:o, s:b, s:o, s:I}", "id", b->id, "name",
		b->name, "kind", b->ops->kind, "is_default", it->is_default, "status",
		it->st.status, "config", b->ops->to_json(&m->env, b->cfg), "has_password",
		b->has_password, "capacity", cap, "volume_count", (json_int_t)volume_count);
	if (o && it->st.code[0])
		json_object_set_new(o, "status_error",
			json_pack("{s:s, s:s}", "code", it->st.code, "message",
				it->st.message));
	if (o && it->st.since)
		json_object_set_new(o, "status_since", json_integer(it->st.since));
	if (o && it->st.checked_wall)
		json_object_set_new(o, "checked_at", json_integer(it->st.checked_wall));
	if (o)
		backend_hosts_worst(o, backend_hosts_json(m, b->id));
	return o;
}

json_t *
storage_volume_counts(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	json_t *o = json_object();

	if (!o || db_query(m->db,
			  "SELECT backend_id, COUNT(*) FROM volumes"
			  " GROUP BY backend_id",
			  0, NULL, &rows) < 0) {
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

static json_t *
volume_id_json(const struct volume_row *v)
{
	return json_string(v->id);
}

json_t *
storage_backend_volumes(struct manager *m, const char *id)
{
	const char *p[] = { id };

	return volumes_query_json(m,
		"SELECT " VOLUME_ROW_COLS " FROM volumes WHERE backend_id = $1 ORDER BY id",
		1, p, volume_id_json);
}

static int
name_taken(struct manager *m, const char *name, const char *except_id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { name, except_id ? except_id : "" };
	int r;

	r = db_query(m->db, "SELECT id FROM backends WHERE name = $1 AND id <> $2", 2, p,
		&rows);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (rows.nrows > 0)
		return nq_error_setr(err, -EEXIST, "name_taken", "name",
			"a backend named '%s' already exists", name);
	return 0;
}

/* The statement that moves the default flag off every backend; the
 * caller's next statement sets it on one (same transaction). */
#define CLEAR_DEFAULT_SQL "UPDATE backends SET is_default = 0 WHERE is_default = 1"

/* Check a backend now (its row shows status and capacity at once). */
static void
refresh_now(struct manager *m, const char *id)
{
	struct backend *b = registry_get(m->reg, id);

	if (b) {
		storage_refresh_one(m, b);
		backend_unref(b);
	}
}

/* Forward credentials and probe on host hid (bc->host_id or local). */
static int
create_on(struct manager *m, const struct backend_create *bc, const char *hid,
	const char *id, const void *cfg, const struct secret *secret, struct nq_error *err)
{
	struct backend_env env = { 0 };
	struct host_state hs;
	int r;

	if (hosts_get_state(m, hid, &hs) == -ENOENT)
		return nq_error_setr(err, -ENOENT, "invalid_field", "host_id",
			"no host with id %.64s", hid);
	r = hosts_env(m, hid, &env, err);
	if (r < 0)
		return r;
	r = bc->ops->create(&env, id, cfg, secret, err);
	hosts_env_release(&env);
	if (r < 0 && err->code[0])
		metrics_probe_failure("", bc->ops->kind, err->code);
	return r;
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
	const char *hid = bc->host_id ? bc->host_id : HOST_LOCAL_ID;
	struct backend_env env = { 0 };
	auth_new_uuid(id);
	r = create_on(m, bc, hid, id, cfg, secret, err);
	if (r < 0) {
		log_info("backend create refused name=%s kind=%s code=%s", bc->name,
			bc->ops->kind, err->code);
		events_record_error(m, "api", "backend.add_failed", "backend", bc->name,
			hid, err);
		return r;
	}

	now_str(now);
	/* A localfile backend is a directory of one host: it belongs there. */
	const char *p[] = { id, bc->name, bc->ops->kind, conf,
		bc->ops->uses_password(cfg) ? "1" : "0", bc->make_default ? "1" : "0", now,
		strcmp(bc->ops->kind, "localfile") ? "" : hid };
	const struct db_stmt steps[] = {
		{ bc->make_default ? CLEAR_DEFAULT_SQL : NULL, 0, NULL },
		{ "INSERT INTO backends (id, name, kind, config, has_password,"
		  " is_default, created_at, updated_at, host_id)"
		  " VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)",
			8, p },
	};
	r = db_exec_tx(m->db, steps, ARRAY_SIZE(steps));
	if (r >= 0 && (r = backend_hosts_created(m, id, hid, secret)) < 0) {
		const char *pd[] = { id };
		(void)db_exec(m->db, "DELETE FROM backends WHERE id = $1", 1, pd, NULL);
	}
	if (r < 0) {
		if (hosts_env(m, hid, &env, &ignore) >= 0) {
			bc->ops->destroy(&env, id, cfg, &ignore);
			hosts_env_release(&env);
		}
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
	events_record(m, "api", "backend.added", "backend", id, hid, "ok", bc->name);
	debug_gate("backend-created", NULL, NULL);

	refresh_now(m, id);
	memcpy(ret_id, id, sizeof id);
	return 0;
}

static int
volumes_guard(struct manager *m, const char *id, const char *why, json_t **ret_volumes,
	struct nq_error *err)
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

/* rotate_password, validated, as a secret (NULL when not rotating). */
static int
rotation_secret(const struct backend_update *bu, struct secret **ret, struct nq_error *err)
{
	size_t n;
	int r;

	*ret = NULL;
	if (!bu->rotate_password || !bu->rotate_password[0])
		return 0;
	n = strlen(bu->rotate_password);
	r = validate_password("rotate_password", bu->rotate_password, n, err);
	if (r < 0)
		return r;
	if (secret_new(bu->rotate_password, n, ret) < 0)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	return 0;
}

/* What a PATCH changes, worked out before anything is touched. */
struct update_plan {
	void *cfg;        /* the new config, owned */
	const char *name; /* the new name */
	bool remount;     /* the mount changes: re-probe */
	bool recreds;     /* the credentials change (user/domain) */
};

static void
update_plan_release(struct update_plan *p)
{
	free(p->cfg);
}

static int
plan_update(struct manager *m, const struct backend *old, const struct backend_update *bu,
	const struct secret *secret, struct update_plan *p, struct nq_error *err)
{
	const struct backend_ops *ops = old->ops;
	_cleanup_secret_ struct secret *ignore_pw = NULL;
	int r;

	p->cfg = malloc(ops->cfg_size);
	if (!p->cfg)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	memcpy(p->cfg, old->cfg, ops->cfg_size);
	if (bu->config) {
		memset(p->cfg, 0, ops->cfg_size);
		r = ops->parse(&m->env, PARSE_UPDATE, bu->config, old->cfg, p->cfg,
			&ignore_pw, err);
		if (r < 0)
			return r;
	}
	p->name = bu->name ? bu->name : old->name;
	if (bu->name && (r = name_taken(m, bu->name, old->id, err)) < 0)
		return r;
	if (strcmp(old->id, BACKEND_DEFAULT_ID) == 0 && (bu->config || bu->name))
		return nq_error_setr(err, -EPERM, "conflict", NULL,
			"the built-in backend %s cannot be changed", old->id);
	p->remount = ops->mount_differs(old->cfg, p->cfg);
	p->recreds = ops->creds_differ(old->cfg, p->cfg);
	if (p->remount && (r = volumes_guard(m, old->id,
				   "the mount cannot change under them", NULL, err)) < 0)
		return r;
	if (ops->uses_password(p->cfg) && !ops->uses_password(old->cfg) && !secret)
		return nq_error_set(err, "missing_field", "rotate_password",
			"rotate_password is required when a guest backend gets a username");
	if (secret && !ops->uses_password(p->cfg))
		return nq_error_set(err, "invalid_field", "rotate_password",
			"a backend without a username has no password to rotate");
	return 0;
}

/* The planned row, in one transaction (with the default flag moved). */
static int
store_update(struct manager *m, const char *id, const struct backend_ops *ops,
	const struct update_plan *plan, bool make_default)
{
	_cleanup_free_ char *conf = config_text(m, ops, plan->cfg);
	char now[24];

	if (!conf)
		return -ENOMEM;
	now_str(now);
	const char *p[] = { id, plan->name, conf,
		ops->uses_password(plan->cfg) ? "1" : "0", now };
	const struct db_stmt steps[] = {
		{ make_default ? CLEAR_DEFAULT_SQL : NULL, 0, NULL },
		{ "UPDATE backends SET name = $2, config = $3, has_password = $4,"
		  " updated_at = $5 WHERE id = $1",
			5, p },
		{ make_default ? "UPDATE backends SET is_default = 1 WHERE id = $1" : NULL,
			1, p },
	};
	return db_exec_tx(m->db, steps, ARRAY_SIZE(steps));
}

/* Agent, database, registry; the agent side is undone when the database
 * refuses. The caller holds the backend's claim. */
static int
apply_update(struct manager *m, const struct backend *old, const struct backend_update *bu,
	const struct secret *secret, const struct update_plan *plan, struct nq_error *err)
{
	struct nq_error ignore = { 0 };
	int r = 0;

	if (plan->remount || plan->recreds)
		r = backend_hosts_reconfigure(m, old, old->cfg, plan->cfg, secret, err);
	else if (secret)
		r = backend_hosts_rotate(m, old, plan->cfg, secret, err);
	if (r < 0)
		return r;
	r = store_update(m, old->id, old->ops, plan, bu->make_default);
	if (r < 0) {
		if (plan->remount || plan->recreds)
			backend_hosts_reconfigure(m, old, plan->cfg, old->cfg, NULL,
				&ignore);
		if (r == -EEXIST)
			return nq_error_setr(err, r, "name_taken", "name",
				"a backend named '%s' already exists", plan->name);
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	}
	r = publish(m, old->id, plan->name, old->ops, plan->cfg);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "out of memory");
	if (bu->make_default)
		registry_set_default(m->reg, old->id);
	return 0;
}

int
storage_update(struct manager *m, const char *id, const struct backend_update *bu,
	struct nq_error *err)
{
	_cleanup_secret_ struct secret *secret = NULL;
	_cleanup_(backend_unrefp) struct backend *old = NULL;
	_cleanup_claim_ char key[CLAIM_KEY_MAX] = "";
	_cleanup_(update_plan_release) struct update_plan plan = { 0 };
	int r;

	if (bu->name && (r = validate_name("name", bu->name, err)) < 0)
		return r;
	if ((r = rotation_secret(bu, &secret, err)) < 0)
		return r;
	old = registry_get(m->reg, id);
	if (!old)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"no backend with id %s", id);
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
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"no backend with id %s", id);
	r = plan_update(m, old, bu, secret, &plan, err);
	if (r >= 0 && (r = apply_update(m, old, bu, secret, &plan, err)) < 0 &&
		(bu->config || bu->name))
		events_record_error(m, "api", "backend.change_failed", "backend", id, NULL,
			err);
	if (r < 0)
		return r;
	log_info("backend updated id=%s remount=%d rotated=%d default=%d", id,
		plan.remount, secret != NULL, bu->make_default);
	if (bu->config || bu->name || bu->make_default)
		events_record(m, "api", "backend.changed", "backend", id, NULL, "ok",
			plan.remount ? "remounted" : NULL);
	if (plan.remount)
		refresh_now(m, id);
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
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"no backend with id %s", id);
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
	backend_cache_drop(m, id);
	r = backend_hosts_detach_all(m, b, err);
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
	events_record(m, "api", "backend.removed", "backend", id, NULL, "ok", b->name);
	return 0;
}
