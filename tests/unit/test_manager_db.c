/* Unit tests: src/manager/db/db.c + db_sqlite.c on a temp file. (The same
 * statements run on PostgreSQL in the integration suite.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manager/db/db.h"

struct ctx {
	char dir[64];
	char url[128];
	struct db *db;
};

static int
setup(void **state)
{
	struct ctx *c = calloc(1, sizeof *c);

	snprintf(c->dir, sizeof c->dir, "/tmp/nqrust-db-XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	snprintf(c->url, sizeof c->url, "sqlite:%s/t.db", c->dir);
	if (db_open(c->url, &c->db) < 0)
		return -1;
	*state = c;
	return 0;
}

static int
teardown(void **state)
{
	struct ctx *c = *state;
	char p[160];

	db_close(c->db);
	for (const char *s = ""; s; s = *s ? NULL : "-wal") {
		snprintf(p, sizeof p, "%s/t.db%s", c->dir, s);
		unlink(p);
	}
	snprintf(p, sizeof p, "%s/t.db-shm", c->dir);
	unlink(p);
	rmdir(c->dir);
	free(c);
	return 0;
}

static void
test_open_bad_url(void **state)
{
	struct db *db;
	(void)state;

	assert_int_equal(db_open("mysql://x", &db), -EPROTONOSUPPORT);
	assert_int_equal(db_open("sqlite:", &db), -EINVAL);
}

static void
test_embedded_migrations_apply_once(void **state)
{
	struct ctx *c = *state;
	struct db_rows rows = { 0 };
	unsigned n = 99;

	assert_true(db_migrations_count >= 1);
	assert_int_equal(db_migrations[0].version, 1);
	for (size_t i = 1; i < db_migrations_count; i++)
		assert_true(db_migrations[i].version > db_migrations[i - 1].version);
	assert_int_equal(db_migrate(c->db, db_migrations, db_migrations_count, &n), 0);
	assert_int_equal(n, db_migrations_count);
	assert_int_equal(db_migrate(c->db, db_migrations, db_migrations_count, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(
		db_query(c->db,
			"SELECT name FROM sqlite_master WHERE type ="
			" 'table' AND name IN ('users','api_tokens','backends','volumes','vms',"
			"'images','hosts') ORDER BY name",
			0, NULL, &rows),
		0);
	assert_int_equal(rows.nrows, 7);
	db_rows_release(&rows);
	/* WAL is on. */
	assert_int_equal(db_query(c->db, "PRAGMA journal_mode", 0, NULL, &rows), 0);
	assert_string_equal(db_rows_get(&rows, 0, 0), "wal");
	db_rows_release(&rows);
}

static void
test_newer_database_refused(void **state)
{
	struct ctx *c = *state;
	static const struct db_migration m[] = { { 1, "one",
		"CREATE TABLE t1 (x INTEGER)" } };

	assert_int_equal(db_migrate(c->db, m, 1, NULL), 0);
	assert_int_equal(
		db_exec(c->db, "INSERT INTO schema_migrations VALUES (5, 'future', 0)", 0,
			NULL, NULL),
		0);
	assert_int_equal(db_migrate(c->db, m, 1, NULL), -EPROTO);
}

static void
test_failed_migration_rolls_back(void **state)
{
	struct ctx *c = *state;
	static const struct db_migration m[] = {
		{ 1, "ok", "CREATE TABLE a (x INTEGER)" },
		{ 2, "broken", "CREATE TABLE b (x INTEGER); THIS IS NOT SQL" },
	};
	struct db_rows rows = { 0 };

	assert_int_equal(db_migrate(c->db, m, 2, NULL), -EIO);
	assert_int_equal(
		db_query(c->db, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'b'", 0,
			NULL, &rows),
		0);
	assert_string_equal(db_rows_get(&rows, 0, 0), "0");
	db_rows_release(&rows);
	assert_int_equal(db_query(c->db, "SELECT MAX(version) FROM schema_migrations", 0,
				 NULL, &rows),
		0);
	assert_string_equal(db_rows_get(&rows, 0, 0), "1");
	db_rows_release(&rows);
}

static void
test_params_nulls_and_unique(void **state)
{
	struct ctx *c = *state;
	struct db_rows rows = { 0 };
	unsigned long changes = 0;
	const char *evil = "x'); DROP TABLE t; --";

	assert_int_equal(
		db_exec(c->db,
			"CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT,"
			" note TEXT)",
			0, NULL, NULL),
		0);
	assert_int_equal(db_exec(c->db, "INSERT INTO t VALUES ($1, $2, $3)", 3,
				 (const char *[]){ evil, "42", NULL }, &changes),
		0);
	assert_int_equal(changes, 1);
	assert_int_equal(db_exec(c->db, "INSERT INTO t VALUES ($1, $2, $3)", 3,
				 (const char *[]){ evil, "1", "dup" }, NULL),
		-EEXIST);
	/* $2 before $1, and a parameter used twice. */
	assert_int_equal(
		db_query(c->db,
			"SELECT id, n, note FROM t WHERE n > $2 AND"
			" id = $1 AND id = $1",
			2, (const char *[]){ evil, "41" }, &rows),
		0);
	assert_int_equal(rows.nrows, 1);
	assert_string_equal(db_rows_get(&rows, 0, 0), evil);
	assert_string_equal(db_rows_get(&rows, 0, 1), "42");
	assert_null(db_rows_get(&rows, 0, 2));
	assert_null(db_rows_get(&rows, 1, 0));
	assert_null(db_rows_get(&rows, 0, 3));
	db_rows_release(&rows);
}

static void
test_transactions(void **state)
{
	struct ctx *c = *state;
	struct db_rows rows = { 0 };

	assert_int_equal(db_exec(c->db, "CREATE TABLE t (x INTEGER)", 0, NULL, NULL), 0);
	assert_int_equal(db_begin(c->db), 0);
	assert_int_equal(db_exec(c->db, "INSERT INTO t VALUES (1)", 0, NULL, NULL), 0);
	db_rollback(c->db);
	assert_int_equal(db_begin(c->db), 0);
	assert_int_equal(db_exec(c->db, "INSERT INTO t VALUES (2)", 0, NULL, NULL), 0);
	assert_int_equal(db_commit(c->db), 0);
	assert_int_equal(db_query(c->db, "SELECT group_concat(x) FROM t", 0, NULL, &rows),
		0);
	assert_string_equal(db_rows_get(&rows, 0, 0), "2");
	db_rows_release(&rows);
}

/* A statement list: a NULL step is skipped; a failing step undoes the
 * whole list under db_exec_tx and stops (without undoing) db_exec_all. */
static void
test_statement_lists(void **state)
{
	struct ctx *c = *state;
	struct db_rows rows = { 0 };
	const char *one[] = { "1" }, *two[] = { "2" };
	const struct db_stmt ok[] = {
		{ "CREATE TABLE t (x INTEGER UNIQUE)", 0, NULL },
		{ NULL, 1, one },
		{ "INSERT INTO t VALUES ($1)", 1, one },
	};
	const struct db_stmt dup[] = {
		{ "INSERT INTO t VALUES ($1)", 1, two },
		{ "INSERT INTO t VALUES ($1)", 1, one },
		{ "INSERT INTO t VALUES (3)", 0, NULL },
	};

	assert_int_equal(db_exec_tx(c->db, ok, 3), 0);
	assert_int_equal(db_exec_tx(c->db, dup, 3), -EEXIST);
	assert_int_equal(db_query(c->db, "SELECT group_concat(x) FROM t", 0, NULL, &rows),
		0);
	assert_string_equal(db_rows_get(&rows, 0, 0), "1");
	db_rows_release(&rows);
	assert_int_equal(db_exec_all(c->db, dup, 3), -EEXIST);
	assert_int_equal(db_query(c->db, "SELECT group_concat(x) FROM t", 0, NULL, &rows),
		0);
	assert_string_equal(db_rows_get(&rows, 0, 0), "1,2");
	db_rows_release(&rows);
	/* The connection is free again: a new transaction begins. */
	assert_int_equal(db_begin(c->db), 0);
	assert_int_equal(db_commit(c->db), 0);
}

static void
test_one_default_index(void **state)
{
	struct ctx *c = *state;

	assert_int_equal(db_migrate(c->db, db_migrations, db_migrations_count, NULL), 0);
	assert_int_equal(
		db_exec(c->db,
			"INSERT INTO backends (id, name, kind, config, has_password, is_default, created_at, updated_at) VALUES ('a','a','smb','{}',0,1,0,0)",
			0, NULL, NULL),
		0);
	assert_int_equal(
		db_exec(c->db,
			"INSERT INTO backends (id, name, kind, config, has_password, is_default, created_at, updated_at) VALUES ('b','b','smb','{}',0,1,0,0)",
			0, NULL, NULL),
		-EEXIST);
	assert_int_equal(
		db_exec(c->db,
			"INSERT INTO backends (id, name, kind, config, has_password, is_default, created_at, updated_at) VALUES ('c','a','smb','{}',0,0,0,0)",
			0, NULL, NULL),
		-EEXIST);
	/* A volume pins its backend. */
	assert_int_equal(
		db_exec(c->db,
			"INSERT INTO volumes (id, backend_id, path, size_bytes,"
			" state, created_at) VALUES ('v','a','/p',1,'ready',0)",
			0, NULL, NULL),
		0);
	assert_int_equal(
		db_exec(c->db, "DELETE FROM backends WHERE id = 'a'", 0, NULL, NULL),
		-EBUSY);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_bad_url),
		cmocka_unit_test_setup_teardown(test_embedded_migrations_apply_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_newer_database_refused, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_failed_migration_rolls_back, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_params_nulls_and_unique, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statement_lists, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_default_index, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
