/* Unit tests: src/common/nq_argv.c — owned copies, NULL termination, the
 * item cap, steal and release. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/nq_argv.h"

static void
test_push_copies_and_terminates(void **state)
{
	struct nq_argv a = { 0 };
	char item[] = "/sbin/mount.cifs";

	(void)state;
	assert_null(nq_argv_get(&a)[0]); /* empty: { NULL } */
	assert_int_equal(nq_argv_push(&a, item), 0);
	item[0] = 'X'; /* the vector holds its own copy */
	assert_int_equal(nq_argv_pushf(&a, "-o%s,port=%u", "ro", 445u), 0);
	assert_int_equal(nq_argv_push(&a, NULL), -EINVAL);
	assert_int_equal(a.n, 2);
	const char *const *v = nq_argv_get(&a);
	assert_string_equal(v[0], "/sbin/mount.cifs");
	assert_string_equal(v[1], "-oro,port=445");
	assert_null(v[2]);
	nq_argv_release(&a);
	assert_null(a.v);
	assert_int_equal(a.n, 0);
	nq_argv_release(&a);
	nq_argv_release(NULL);
}

static void
test_cap_and_growth(void **state)
{
	struct nq_argv a = { 0 };

	(void)state;
	for (int i = 0; i < NQ_ARGV_MAX; i++)
		assert_int_equal(nq_argv_pushf(&a, "%d", i), 0);
	assert_int_equal(nq_argv_push(&a, "one too many"), -E2BIG);
	assert_int_equal(a.n, NQ_ARGV_MAX);
	assert_string_equal(a.v[NQ_ARGV_MAX - 1], "255");
	assert_null(a.v[NQ_ARGV_MAX]);
	nq_argv_release(&a);
}

static void
test_steal(void **state)
{
	struct nq_argv a = { 0 };
	char **v;

	(void)state;
	assert_null(nq_argv_steal(&a));
	assert_int_equal(nq_argv_push(&a, "x"), 0);
	v = nq_argv_steal(&a);
	assert_null(a.v);
	assert_int_equal(a.n, 0);
	assert_string_equal(v[0], "x");
	assert_null(v[1]);
	free(v[0]);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_copies_and_terminates),
		cmocka_unit_test(test_cap_and_growth),
		cmocka_unit_test(test_steal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
