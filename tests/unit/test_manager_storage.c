/* Unit tests: src/manager/services/storage.c (create, update, delete) and
 * the status refresh it runs after a create (services/refresher.c), with a
 * fake backend kind that records every call and fails on demand, over an
 * in-memory SQLite database with the real migrations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_util.h"
#include "manager/manager.h"
#include "manager/services/claims.h"
#include "manager/services/hosts.h"
#include "manager/services/storage.h"

/* ---- the fake kind ---- */

struct fake_cfg {
	char host[32]; /* changing it needs a remount */
	char user[32]; /* "" = guest; changing it needs new credentials */
};

static struct {
	int create, destroy, rotate, reconfigure, capacity, capacity_remount;
	int fail_create, fail_rotate, fail_reconfigure; /* -errno to return */
	int capacity_enoent;        /* answer -ENOENT this many times */
	char last_secret[64];       /* password of the last create/rotate */
	struct fake_cfg reconf_to;  /* new_cfg of the last reconfigure */
	struct manager *dup_name_m; /* create inserts a row named "dup" */
} fake;

static int
fake_parse(const struct backend_env *env, enum parse_mode mode, json_t *config,
	const void *base, void *ret_cfg, struct secret **ret_secret, struct nq_error *err)
{
	struct fake_cfg *c = ret_cfg;
	const char *host = NULL, *user = NULL, *pw = NULL;
	(void)env;

	*ret_secret = NULL;
	if (base)
		*c = *(const struct fake_cfg *)base;
	if (json_get_string(config, "host", &host, err) < 0 ||
		json_get_string(config, "user", &user, err) < 0 ||
		json_get_string(config, "password", &pw, err) < 0)
		return -EINVAL;
	if (host)
		snprintf(c->host, sizeof c->host, "%s", host);
	if (user)
		snprintf(c->user, sizeof c->user, "%s", user);
	if (!c->host[0])
		return nq_error_set(err, "missing_field", "config.host",
			"host is required");
	if (pw && mode != PARSE_CREATE)
		return nq_error_set(err, "invalid_field", "config.password",
			"no password here");
	if (pw && secret_new(pw, strlen(pw), ret_secret) < 0)
		return -ENOMEM;
	return 0;
}

static json_t *
fake_to_json(const struct backend_env *env, const void *cfg)
{
	const struct fake_cfg *c = cfg;
	(void)env;
	return json_pack("{s:s, s:s}", "host", c->host, "user", c->user);
}

static bool
fake_uses_password(const void *cfg)
{
	return ((const struct fake_cfg *)cfg)->user[0] != '\0';
}

static bool
fake_mount_differs(const void *a, const void *b)
{
	return strcmp(((const struct fake_cfg *)a)->host,
		((const struct fake_cfg *)b)->host);
}

static bool
fake_creds_differ(const void *a, const void *b)
{
	return strcmp(((const struct fake_cfg *)a)->user,
		((const struct fake_cfg *)b)->user);
}

static int
fake_create(const struct backend_env *env, const char *id, const void *cfg,
	const struct secret *secret, struct nq_error *err)
{
	(void)env, (void)id, (void)cfg;
	fake.create++;
	snprintf(fake.last_secret, sizeof fake.last_secret, "%s",
		secret ? secret->buf : "");
	if (fake.dup_name_m) {
		/* Another create won the race for the name after our check. */
		const char *p[] = { "racer", "dup" };
		assert_int_equal(
			db_exec(fake.dup_name_m->db,
				"INSERT INTO backends (id, name,"
				" kind, config, has_password, is_default, created_at, updated_at)"
				" VALUES ($1, $2, 'fake', '{}', 0, 0, 1, 1)",
				2, p, NULL),
			0);
	}
	if (fake.fail_create)
		return nq_error_setr(err, fake.fail_create, "smb_auth_failed", NULL,
			"refused");
	return 0;
}

static int
fake_rotate(const struct backend_env *env, const char *id, const void *cfg,
	const struct secret *secret, struct nq_error *err)
{
	(void)env, (void)id, (void)cfg;
	fake.rotate++;
	if (fake.fail_rotate)
		return nq_error_setr(err, fake.fail_rotate, "smb_auth_failed", NULL,
			"the server refused the new password");
	snprintf(fake.last_secret, sizeof fake.last_secret, "%s", secret->buf);
	return 0;
}

static int
fake_reconfigure(const struct backend_env *env, const char *id, const void *old_cfg,
	const void *new_cfg, const struct secret *secret, struct nq_error *err)
{
	(void)env, (void)id, (void)old_cfg, (void)secret;
	fake.reconfigure++;
	fake.reconf_to = *(const struct fake_cfg *)new_cfg;
	if (fake.fail_reconfigure)
		return nq_error_setr(err, fake.fail_reconfigure, "smb_unreachable", NULL,
			"cannot reach the new server");
	return 0;
}

static int
fake_capacity(const struct backend_env *env, const char *id, const void *cfg,
	bool may_remount, struct capacity *ret, struct nq_error *err)
{
	(void)env, (void)id, (void)cfg;
	fake.capacity++;
	if (may_remount)
		fake.capacity_remount++;
	if (!may_remount && fake.capacity_enoent > 0) {
		fake.capacity_enoent--;
		return nq_error_setr(err, -ENOENT, "not_found", NULL, "unknown backend");
	}
	*ret = (struct capacity){ 100, 40, 60 };
	return 0;
}

static int
fake_destroy(const struct backend_env *env, const char *id, const void *cfg,
	struct nq_error *err)
{
	(void)env, (void)id, (void)cfg, (void)err;
	fake.destroy++;
	return 0;
}

static const struct backend_ops fake_ops = {
	.kind = "fake",
	.cfg_size = sizeof(struct fake_cfg),
	.parse = fake_parse,
	.to_json = fake_to_json,
	.uses_password = fake_uses_password,
	.mount_differs = fake_mount_differs,
	.creds_differ = fake_creds_differ,
	.create = fake_create,
	.rotate_secret = fake_rotate,
	.reconfigure = fake_reconfigure,
	.capacity = fake_capacity,
	.destroy = fake_destroy,
};

/* ---- fixture ---- */

static int
setup(void **state)
{
	struct manager *m = calloc(1, sizeof *m);

	memset(&fake, 0, sizeof fake);
	assert_non_null(m);
	assert_int_equal(db_open("sqlite::memory:", &m->db), 0);
	assert_int_equal(db_migrate(m->db, db_migrations, db_migrations_count, NULL), 0);
	assert_int_equal(registry_new(&m->reg), 0);
	m->env.status_timeout_ms = 1000;
	assert_int_equal(storage_load(m), 0);
	assert_int_equal(hosts_ensure_local(m), 0); /* as main does */
	*state = m;
	return 0;
}

static int
teardown(void **state)
{
	struct manager *m = *state;

	registry_free(m->reg);
	db_close(m->db);
	free(m);
	return 0;
}

static json_t *
cfg_json(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

/* Create a fake backend from config text; returns its id in id. */
static int
create(struct manager *m, const char *name, const char *config,
	char id[BACKEND_ID_MAX + 1], struct nq_error *err)
{
	json_t *j = cfg_json(config);
	struct backend_create bc = { .name = name, .ops = &fake_ops, .config = j };
	int r = storage_create(m, &bc, id, err);

	json_decref(j);
	return r;
}

/* The stored row: "name|config|has_password|is_default", or "" when none. */
static void
row_of(struct manager *m, const char *id, char *buf, size_t sz)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };

	assert_int_equal(
		db_query(m->db,
			"SELECT name, config, has_password, is_default"
			" FROM backends WHERE id = $1",
			1, p, &rows),
		0);
	if (rows.nrows == 0) {
		buf[0] = '\0';
		return;
	}
	snprintf(buf, sz, "%s|%s|%s|%s", db_rows_get(&rows, 0, 0), db_rows_get(&rows, 0, 1),
		db_rows_get(&rows, 0, 2), db_rows_get(&rows, 0, 3));
}

static void
add_volume(struct manager *m, const char *vid, const char *backend_id)
{
	const char *p[] = { vid, backend_id };

	assert_int_equal(
		db_exec(m->db,
			"INSERT INTO volumes (id, backend_id, vm_id, path,"
			" size_bytes, allocated_bytes, state, created_at) VALUES ($1, $2, NULL, '/v',"
			" 10, NULL, 'ready', 1)",
			2, p, NULL),
		0);
}

static void
status_of(struct manager *m, const char *id, struct registry_item *it)
{
	assert_int_equal(registry_item_get(m->reg, id, it), 0);
}

/* ---- create ---- */

static void
test_create_publishes_and_stores(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	struct registry_item it = { 0 };
	char id[BACKEND_ID_MAX + 1], row[512], def[BACKEND_ID_MAX + 1];

	assert_int_equal(
		create(m, "nas",
			"{\"host\":\"h1\",\"user\":\"bob\","
			"\"password\":\"s3cret\"}",
			id, &err),
		0);
	assert_int_equal(fake.create, 1);
	assert_string_equal(fake.last_secret, "s3cret");
	row_of(m, id, row, sizeof row);
	/* The stored config is the API form: no password anywhere. */
	assert_string_equal(row, "nas|{\"host\":\"h1\",\"user\":\"bob\"}|1|0");
	status_of(m, id, &it);
	assert_string_equal(it.b->name, "nas");
	assert_true(it.b->has_password);
	assert_string_equal(it.st.status, "ok");
	assert_true(it.st.have_capacity);
	assert_int_equal(it.st.cap.free_bytes, 60);
	registry_item_release(&it);
	registry_default(m->reg, def, sizeof def);
	assert_string_equal(def, BACKEND_DEFAULT_ID);
	assert_int_equal(fake.destroy, 0);
}

static void
test_create_default_moves_flag(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	char id[BACKEND_ID_MAX + 1], row[512], def[BACKEND_ID_MAX + 1];
	json_t *j = cfg_json("{\"host\":\"h\"}");
	struct backend_create
		bc = { .name = "d", .ops = &fake_ops, .config = j, .make_default = true };

	assert_int_equal(storage_create(m, &bc, id, &err), 0);
	json_decref(j);
	registry_default(m->reg, def, sizeof def);
	assert_string_equal(def, id);
	row_of(m, id, row, sizeof row);
	assert_string_equal(row + strlen(row) - 2, "|1");
	row_of(m, BACKEND_DEFAULT_ID, row, sizeof row);
	assert_string_equal(row + strlen(row) - 2, "|0");
}

static void
test_create_refused_leaves_nothing(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	char id[BACKEND_ID_MAX + 1];
	size_t before = registry_count(m->reg);

	fake.fail_create = -EACCES;
	assert_int_equal(create(m, "bad", "{\"host\":\"h\"}", id, &err), -EACCES);
	assert_string_equal(err.code, "smb_auth_failed");
	assert_int_equal(registry_count(m->reg), before);
	/* The name is free again: nothing was stored. */
	fake.fail_create = 0;
	memset(&err, 0, sizeof err);
	assert_int_equal(create(m, "bad", "{\"host\":\"h\"}", id, &err), 0);
}

static void
test_create_validation_errors(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	char id[BACKEND_ID_MAX + 1];

	assert_int_equal(create(m, "", "{\"host\":\"h\"}", id, &err), -EINVAL);
	assert_string_equal(err.field, "name");
	memset(&err, 0, sizeof err);
	assert_int_equal(create(m, "x", "{}", id, &err), -EINVAL);
	assert_string_equal(err.field, "config.host");
	memset(&err, 0, sizeof err);
	assert_int_equal(create(m, "one", "{\"host\":\"h\"}", id, &err), 0);
	assert_int_equal(create(m, "one", "{\"host\":\"h\"}", id, &err), -EEXIST);
	assert_string_equal(err.code, "name_taken");
	assert_string_equal(err.field, "name");
	assert_int_equal(fake.create, 1); /* refused before the agent */
}

/* The name check passes, then a racing create takes the name: the insert
 * fails and the agent side is undone. */
static void
test_create_db_conflict_destroys(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	char id[BACKEND_ID_MAX + 1];
	size_t before = registry_count(m->reg);

	fake.dup_name_m = m;
	assert_int_equal(create(m, "dup", "{\"host\":\"h\"}", id, &err), -EEXIST);
	assert_string_equal(err.code, "name_taken");
	assert_int_equal(fake.create, 1);
	assert_int_equal(fake.destroy, 1);
	assert_int_equal(registry_count(m->reg), before);
}

/* The refresh after a create finds the backend unknown to the agent (a
 * 404): it re-attaches under the backend's claim, without deadlocking. */
static void
test_create_404_reattaches(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	struct registry_item it = { 0 };
	char id[BACKEND_ID_MAX + 1];

	fake.capacity_enoent = 1;
	assert_int_equal(create(m, "flap", "{\"host\":\"h\"}", id, &err), 0);
	assert_int_equal(fake.capacity, 2);
	assert_int_equal(fake.capacity_remount, 1);
	status_of(m, id, &it);
	assert_string_equal(it.st.status, "ok");
	registry_item_release(&it);
	/* The claim was let go: the backend can be changed at once. */
	struct backend_update bu = { .name = "flap2" };
	assert_int_equal(storage_update(m, id, &bu, &err), 0);
}

/* A 404 while another operation holds the claim: no remount, and the
 * status keeps its last real value ("busy" is no news about the storage;
 * the operation that holds the claim checks it itself). */
static void
test_refresh_404_while_claimed_is_busy(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	struct registry_item it = { 0 };
	char id[BACKEND_ID_MAX + 1], key[CLAIM_KEY_MAX];
	struct backend *b;

	assert_int_equal(create(m, "held", "{\"host\":\"h\"}", id, &err), 0);
	claim_key(key, "backend", id);
	assert_int_equal(claim_try(key, "test", NULL), 0);
	fake.capacity_enoent = 1;
	fake.capacity_remount = 0;
	b = registry_get(m->reg, id);
	storage_refresh_one(m, b);
	backend_unref(b);
	claim_release(key);
	assert_int_equal(fake.capacity_remount, 0);
	status_of(m, id, &it);
	assert_string_equal(it.st.status, "ok");
	assert_string_equal(it.st.code, "");
	registry_item_release(&it);
}

/* ---- update ---- */

static void
test_update_busy_when_claimed(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	char id[BACKEND_ID_MAX + 1], key[CLAIM_KEY_MAX], before[512], after[512];
	json_t *j = cfg_json("{\"host\":\"other\"}");
	struct backend_update bu = { .name = "renamed", .config = j };

	assert_int_equal(create(m, "b", "{\"host\":\"h\"}", id, &err), 0);
	row_of(m, id, before, sizeof before);
	claim_key(key, "backend", id);
	assert_int_equal(claim_try(key, "test", NULL), 0);
	assert_int_equal(storage_update(m, id, &bu, &err), -EBUSY);
	assert_string_equal(err.code, "busy");
	assert_int_equal(nq_error_http_status(err.code), 409);
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_delete(m, id, NULL, &err), -EBUSY);
	assert_string_equal(err.code, "busy");
	claim_release(key);
	assert_int_equal(fake.reconfigure, 0);
	assert_int_equal(fake.destroy, 0);
	row_of(m, id, after, sizeof after);
	assert_string_equal(before, after);
	/* Released: the same update goes through. */
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_update(m, id, &bu, &err), 0);
	json_decref(j);
	row_of(m, id, after, sizeof after);
	assert_string_equal(after, "renamed|{\"host\":\"other\",\"user\":\"\"}|0|0");
	assert_int_equal(fake.reconfigure, 1);
	assert_string_equal(fake.reconf_to.host, "other");
}

static void
test_update_rotation_refused_changes_nothing(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	char id[BACKEND_ID_MAX + 1], before[512], after[512];
	struct backend_update bu = { .rotate_password = "new-pw" };
	struct backend *b0, *b1;

	assert_int_equal(
		create(m, "r", "{\"host\":\"h\",\"user\":\"u\",\"password\":\"old\"}", id,
			&err),
		0);
	row_of(m, id, before, sizeof before);
	b0 = registry_get(m->reg, id);
	fake.fail_rotate = -EACCES;
	assert_int_equal(storage_update(m, id, &bu, &err), -EACCES);
	assert_string_equal(err.code, "smb_auth_failed");
	assert_int_equal(fake.rotate, 1);
	assert_string_equal(fake.last_secret, "old");
	row_of(m, id, after, sizeof after);
	assert_string_equal(before, after);
	b1 = registry_get(m->reg, id);
	assert_ptr_equal(b0, b1); /* the same published instance */
	backend_unref(b0);
	backend_unref(b1);
	/* Accepted: the new password goes to the agent, no remount. */
	fake.fail_rotate = 0;
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_update(m, id, &bu, &err), 0);
	assert_string_equal(fake.last_secret, "new-pw");
	assert_int_equal(fake.reconfigure, 0);
}

static void
test_update_refusals(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	char id[BACKEND_ID_MAX + 1], other[BACKEND_ID_MAX + 1];
	json_t *user = cfg_json("{\"user\":\"u\"}"), *host = cfg_json("{\"host\":\"h2\"}");

	assert_int_equal(create(m, "g", "{\"host\":\"h\"}", id, &err), 0);
	assert_int_equal(create(m, "other", "{\"host\":\"h\"}", other, &err), 0);
	struct backend_update missing = { .config = user };
	assert_int_equal(storage_update(m, id, &missing, &err), -EINVAL);
	assert_string_equal(err.field, "rotate_password");
	assert_string_equal(err.code, "missing_field");
	struct backend_update guest_pw = { .rotate_password = "x" };
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_update(m, id, &guest_pw, &err), -EINVAL);
	assert_string_equal(err.code, "invalid_field");
	struct backend_update taken = { .name = "other" };
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_update(m, id, &taken, &err), -EEXIST);
	assert_string_equal(err.code, "name_taken");
	struct backend_update builtin = { .name = "mine" };
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_update(m, BACKEND_DEFAULT_ID, &builtin, &err), -EPERM);
	assert_string_equal(err.code, "conflict");
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_update(m, "nope", &builtin, &err), -ENOENT);
	assert_string_equal(err.code, "not_found");
	/* A remount under live volumes is refused. */
	add_volume(m, "vol-1", id);
	struct backend_update move = { .config = host };
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_update(m, id, &move, &err), -EBUSY);
	assert_string_equal(err.code, "backend_in_use");
	assert_int_equal(fake.reconfigure, 0);
	assert_int_equal(fake.rotate, 0);
	json_decref(user);
	json_decref(host);
}

/* The database refuses after the agent switched: the agent is switched
 * back to the old config. */
static void
test_update_db_failure_switches_back(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	char id[BACKEND_ID_MAX + 1];
	json_t *host = cfg_json("{\"host\":\"h2\"}");
	struct backend_update bu = { .config = host };
	struct backend *b;

	assert_int_equal(create(m, "sw", "{\"host\":\"h1\"}", id, &err), 0);
	/* A trigger makes the row's UPDATE fail (an engine error). */
	assert_int_equal(
		db_exec(m->db,
			"CREATE TRIGGER no_update BEFORE UPDATE ON backends"
			" BEGIN SELECT RAISE(ABORT, 'refused'); END",
			0, NULL, NULL),
		0);
	assert_true(storage_update(m, id, &bu, &err) < 0);
	assert_string_equal(err.code, "internal_error");
	assert_int_equal(fake.reconfigure, 2);
	assert_string_equal(fake.reconf_to.host, "h1");
	b = registry_get(m->reg, id);
	assert_string_equal(((const struct fake_cfg *)b->cfg)->host, "h1");
	backend_unref(b);
	json_decref(host);
}

/* ---- delete ---- */

static void
test_delete_paths(void **state)
{
	struct manager *m = *state;
	struct nq_error err = { 0 };
	char id[BACKEND_ID_MAX + 1], row[512];
	json_t *vols = NULL;
	size_t before = registry_count(m->reg);

	assert_int_equal(storage_delete(m, BACKEND_DEFAULT_ID, NULL, &err), -EBUSY);
	assert_string_equal(err.code, "backend_is_default");
	assert_int_equal(create(m, "del", "{\"host\":\"h\"}", id, &err), 0);
	add_volume(m, "vol-a", id);
	add_volume(m, "vol-b", id);
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_delete(m, id, &vols, &err), -EBUSY);
	assert_string_equal(err.code, "backend_in_use");
	assert_int_equal(json_array_size(vols), 2);
	assert_string_equal(json_string_value(json_array_get(vols, 0)), "vol-a");
	json_decref(vols);
	assert_int_equal(fake.destroy, 0);
	assert_int_equal(db_exec(m->db, "DELETE FROM volumes", 0, NULL, NULL), 0);
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_delete(m, id, NULL, &err), 0);
	assert_int_equal(fake.destroy, 1);
	row_of(m, id, row, sizeof row);
	assert_string_equal(row, "");
	assert_int_equal(registry_count(m->reg), before);
	memset(&err, 0, sizeof err);
	assert_int_equal(storage_delete(m, id, NULL, &err), -ENOENT);
	assert_string_equal(err.code, "not_found");
}

/* Reloading from the database (a restart) restores what was stored; a
 * kind the binary does not know is skipped. */
static void
test_load_skips_unknown_kind(void **state)
{
	struct manager *m = *state;
	struct registry *reg;
	char def[BACKEND_ID_MAX + 1];

	assert_int_equal(
		db_exec(m->db,
			"INSERT INTO backends (id, name, kind, config,"
			" has_password, is_default, created_at, updated_at) VALUES ('x', 'x', 'fake',"
			" '{}', 0, 0, 1, 1)",
			0, NULL, NULL),
		0);
	assert_int_equal(registry_new(&reg), 0);
	registry_free(m->reg);
	m->reg = reg;
	assert_int_equal(storage_load(m), 0);
	assert_int_equal(registry_count(m->reg), 1);
	registry_default(m->reg, def, sizeof def);
	assert_string_equal(def, BACKEND_DEFAULT_ID);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_create_publishes_and_stores),
		T(test_create_default_moves_flag),
		T(test_create_refused_leaves_nothing),
		T(test_create_validation_errors),
		T(test_create_db_conflict_destroys),
		T(test_create_404_reattaches),
		T(test_refresh_404_while_claimed_is_busy),
		T(test_update_busy_when_claimed),
		T(test_update_rotation_refused_changes_nothing),
		T(test_update_refusals),
		T(test_update_db_failure_switches_back),
		T(test_delete_paths),
		T(test_load_skips_unknown_kind),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
