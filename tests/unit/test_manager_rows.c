/* Unit tests: src/manager/db/rows.c, the typed VM and volume row readers:
 * by hand-made result sets (NULL cells, bad numbers, wrong shapes) and
 * through a real query of VM_ROW_COLS / VOLUME_ROW_COLS on SQLite with
 * the real migrations (the column list and the reader agree). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <string.h>

#include "common/macro.h"
#include "manager/db/rows.h"

/* A one-row result of n cells (NULL entries are SQL NULL). */
static struct db_rows
one_row(const char **cells, unsigned n)
{
	return (struct db_rows){ .nrows = 1, .ncols = n, .cells = (char **)cells };
}

static void
test_vm_row_full(void **state)
{
	const char *c[] = { "vm1", "web", "2", "512", "img.ext4", "b1", "running", "local",
		"k.vmlinuz", "k.initrd", "boom", "100", "200" };
	struct db_rows r = one_row(c, 13);
	struct vm_row v;
	(void)state;

	assert_int_equal(vm_row_read(&r, 0, &v), 0);
	assert_string_equal(v.id, "vm1");
	assert_string_equal(v.name, "web");
	assert_int_equal(v.vcpus, 2);
	assert_int_equal(v.memory_mib, 512);
	assert_string_equal(v.image_id, "img.ext4");
	assert_string_equal(v.backend_id, "b1");
	assert_string_equal(v.state, "running");
	assert_true(v.has_host);
	assert_string_equal(v.host_id, "local");
	assert_string_equal(v.kernel, "k.vmlinuz");
	assert_string_equal(v.initrd, "k.initrd");
	assert_true(v.has_error);
	assert_string_equal(v.error, "boom");
	assert_int_equal(v.created_at, 100);
	assert_int_equal(v.updated_at, 200);
}

static void
test_vm_row_nulls(void **state)
{
	const char *c[] = { "vm1", NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
		NULL, NULL, NULL };
	struct db_rows r = one_row(c, 13);
	struct vm_row v;
	(void)state;

	memset(&v, 0xff, sizeof v);
	assert_int_equal(vm_row_read(&r, 0, &v), 0);
	assert_string_equal(v.id, "vm1");
	assert_string_equal(v.name, "");
	assert_int_equal(v.vcpus, 0);
	assert_int_equal(v.memory_mib, 0);
	assert_string_equal(v.image_id, "");
	assert_string_equal(v.backend_id, "");
	assert_string_equal(v.state, "");
	assert_false(v.has_host);
	assert_string_equal(v.host_id, "");
	assert_string_equal(v.kernel, "");
	assert_string_equal(v.initrd, "");
	assert_false(v.has_error);
	assert_string_equal(v.error, "");
	assert_int_equal(v.created_at, 0);
	assert_int_equal(v.updated_at, 0);
}

static void
test_vm_row_refuses_bad_shapes(void **state)
{
	const char *good[] = { "vm1", "n", "1", "64", "i", "b", "s", "h", "k", "", NULL,
		"1", "2" };
	const char *c[13];
	struct db_rows r;
	struct vm_row v = { 0 };
	static const char *const bad_numbers[] = { "", "x", "1x", " 1", "-1",
		"99999999999", "1.5" };
	(void)state;

	/* Wrong column count, row out of range, NULL id, no result. */
	r = one_row(good, 12);
	assert_int_equal(vm_row_read(&r, 0, &v), -EPROTO);
	r = one_row(good, 13);
	assert_int_equal(vm_row_read(&r, 1, &v), -EPROTO);
	assert_int_equal(vm_row_read(NULL, 0, &v), -EPROTO);
	memcpy(c, good, sizeof c);
	c[0] = NULL;
	r = one_row(c, 13);
	assert_int_equal(vm_row_read(&r, 0, &v), -EPROTO);
	/* vcpus is not a count: refused, and *ret is left alone. */
	for (size_t i = 0; i < sizeof bad_numbers / sizeof *bad_numbers; i++) {
		memcpy(c, good, sizeof c);
		c[2] = bad_numbers[i];
		r = one_row(c, 13);
		v.id = "untouched";
		assert_int_equal(vm_row_read(&r, 0, &v), -EPROTO);
		assert_string_equal(v.id, "untouched");
	}
	memcpy(c, good, sizeof c);
	c[11] = "later";
	r = one_row(c, 13);
	assert_int_equal(vm_row_read(&r, 0, &v), -EPROTO);
}

static void
test_volume_row(void **state)
{
	const char *full[] = { "v1", "b1", "vm1", "/p", "1024", "512", "ready" };
	const char *nulls[] = { "v2", NULL, NULL, NULL, NULL, NULL, NULL };
	const char *bad[] = { "v3", "b", NULL, "/p", "-5", NULL, "ready" };
	struct db_rows r;
	struct volume_row v;
	(void)state;

	r = one_row(full, 7);
	assert_int_equal(volume_row_read(&r, 0, &v), 0);
	assert_string_equal(v.id, "v1");
	assert_string_equal(v.backend_id, "b1");
	assert_true(v.has_vm);
	assert_string_equal(v.vm_id, "vm1");
	assert_string_equal(v.path, "/p");
	assert_int_equal(v.size_bytes, 1024);
	assert_true(v.has_allocated);
	assert_int_equal(v.allocated_bytes, 512);
	assert_string_equal(v.state, "ready");

	r = one_row(nulls, 7);
	assert_int_equal(volume_row_read(&r, 0, &v), 0);
	assert_false(v.has_vm);
	assert_string_equal(v.vm_id, "");
	assert_false(v.has_allocated);
	assert_int_equal(v.allocated_bytes, 0);
	assert_int_equal(v.size_bytes, 0);
	assert_string_equal(v.path, "");
	assert_string_equal(v.state, "");

	r = one_row(bad, 7);
	assert_int_equal(volume_row_read(&r, 0, &v), -EPROTO);
	r = one_row(full, 6);
	assert_int_equal(volume_row_read(&r, 0, &v), -EPROTO);
}

/* The column lists select what the readers expect, on the real schema. */
static void
test_real_query(void **state)
{
	_cleanup_(db_rows_release) struct db_rows vms = { 0 }, vols = { 0 };
	struct db *db;
	struct vm_row v;
	struct volume_row vol;
	(void)state;

	assert_int_equal(db_open("sqlite::memory:", &db), 0);
	assert_int_equal(db_migrate(db, db_migrations, db_migrations_count, NULL), 0);
	assert_int_equal(
		db_exec(db,
			"INSERT INTO backends (id, name, kind, config,"
			" has_password, is_default, created_at, updated_at) VALUES ('b', 'b',"
			" 'localfile', '{}', 0, 1, 1, 1)",
			0, NULL, NULL),
		0);
	/* image_id, backend_id, host_id and error NULL. */
	assert_int_equal(
		db_exec(db,
			"INSERT INTO vms (id, name, vcpus, memory_mib, state,"
			" kernel, initrd, created_at, updated_at) VALUES ('vm', 'n', 3, 128,"
			" 'stopped', 'k', '', 7, 8)",
			0, NULL, NULL),
		0);
	assert_int_equal(
		db_exec(db,
			"INSERT INTO volumes (id, backend_id, vm_id, path,"
			" size_bytes, allocated_bytes, state, created_at) VALUES ('vol', 'b', 'vm',"
			" '/x', 4096, NULL, 'provisioning', 9)",
			0, NULL, NULL),
		0);
	assert_int_equal(db_query(db, "SELECT " VM_ROW_COLS " FROM vms", 0, NULL, &vms), 0);
	assert_int_equal(vm_row_read(&vms, 0, &v), 0);
	assert_string_equal(v.id, "vm");
	assert_string_equal(v.name, "n");
	assert_int_equal(v.vcpus, 3);
	assert_int_equal(v.memory_mib, 128);
	assert_string_equal(v.image_id, "");
	assert_string_equal(v.backend_id, "");
	assert_string_equal(v.state, "stopped");
	assert_false(v.has_host);
	assert_string_equal(v.kernel, "k");
	assert_false(v.has_error);
	assert_int_equal(v.created_at, 7);
	assert_int_equal(v.updated_at, 8);
	assert_int_equal(
		db_query(db, "SELECT " VOLUME_ROW_COLS " FROM volumes", 0, NULL, &vols), 0);
	assert_int_equal(volume_row_read(&vols, 0, &vol), 0);
	assert_string_equal(vol.id, "vol");
	assert_string_equal(vol.backend_id, "b");
	assert_string_equal(vol.vm_id, "vm");
	assert_string_equal(vol.path, "/x");
	assert_int_equal(vol.size_bytes, 4096);
	assert_false(vol.has_allocated);
	assert_string_equal(vol.state, "provisioning");
	db_close(db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_row_full),
		cmocka_unit_test(test_vm_row_nulls),
		cmocka_unit_test(test_vm_row_refuses_bad_shapes),
		cmocka_unit_test(test_volume_row),
		cmocka_unit_test(test_real_query),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
