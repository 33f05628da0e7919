/* Unit tests: src/manager/services/registry.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <string.h>

#include "manager/services/registry.h"

static void
test_put_get_replace_remove(void **state)
{
	struct registry *reg;
	struct backend *a, *b, *a2, *got;
	struct registry_item *items;
	struct backend_status st = { 0 };
	char cfg[4096] = { 0 };
	size_t n;
	(void)state;

	assert_int_equal(registry_new(&reg), 0);
	assert_int_equal(
		backend_new("id-a", "zeta", &backend_localfile_ops, cfg, false, &a), 0);
	assert_int_equal(
		backend_new("id-b", "alpha", &backend_localfile_ops, cfg, false, &b), 0);
	assert_int_equal(registry_put(reg, a), 0);
	assert_int_equal(registry_put(reg, b), 0);
	registry_set_default(reg, "id-a");
	snprintf(st.status, sizeof st.status, "ok");
	st.have_capacity = true;
	st.cap.total_bytes = 100;
	registry_set_status(reg, "id-a", &st);

	assert_int_equal(registry_snapshot(reg, &items, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0].b->name, "alpha"); /* sorted by name */
	assert_string_equal(items[1].st.status, "ok");
	assert_true(items[1].is_default);
	assert_false(items[0].is_default);
	assert_string_equal(items[0].st.status, "unknown");

	/* Replace id-a: the status survives, a holder of the old instance
	 * keeps a valid object. */
	got = registry_get(reg, "id-a");
	assert_ptr_equal(got, a);
	assert_int_equal(
		backend_new("id-a", "zeta2", &backend_localfile_ops, cfg, false, &a2), 0);
	assert_int_equal(registry_put(reg, a2), 0);
	backend_unref(a);
	backend_unref(a2);
	assert_string_equal(got->name, "zeta"); /* still alive via our ref */
	backend_unref(got);
	got = registry_get(reg, "id-a");
	assert_string_equal(got->name, "zeta2");
	backend_unref(got);
	registry_items_free(items, n); /* drops the snapshot's ref on old a */

	struct registry_item it;
	assert_int_equal(registry_item_get(reg, "id-a", &it), 0);
	assert_string_equal(it.st.status, "ok");
	assert_int_equal(it.st.cap.total_bytes, 100);
	registry_item_release(&it);

	registry_remove(reg, "id-a");
	assert_null(registry_get(reg, "id-a"));
	char def[80];
	registry_default(reg, def, sizeof def);
	assert_string_equal(def, "");
	assert_int_equal(registry_item_get(reg, "id-a", &it), -ENOENT);
	assert_int_equal(registry_count(reg), 1);
	backend_unref(b);
	registry_free(reg);
}

static void
test_limits(void **state)
{
	char cfg[4096] = { 0 }, longid[200];
	struct backend *b;
	(void)state;

	memset(longid, 'x', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	assert_int_equal(backend_new(longid, "n", &backend_localfile_ops, cfg, false, &b),
		-ENAMETOOLONG);
	backend_unref(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_get_replace_remove),
		cmocka_unit_test(test_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
