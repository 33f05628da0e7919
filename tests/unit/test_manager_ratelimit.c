/* Unit tests: src/manager/auth/ratelimit.c (time is a parameter). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "manager/auth/ratelimit.h"

static void
test_lock_after_max(void **state)
{
	struct ratelimit *rl = calloc(1, sizeof *rl);
	(void)state;

	ratelimit_init(rl, 3, 60, 30);
	assert_int_equal(ratelimit_blocked(rl, "u:admin", 100), 0);
	assert_false(ratelimit_fail(rl, "u:admin", 100));
	assert_false(ratelimit_fail(rl, "u:admin", 101));
	assert_int_equal(ratelimit_blocked(rl, "u:admin", 101), 0);
	assert_true(ratelimit_fail(rl, "u:admin", 102));
	assert_int_equal(ratelimit_blocked(rl, "u:admin", 102), 30);
	assert_int_equal(ratelimit_blocked(rl, "u:admin", 131), 1);
	assert_int_equal(ratelimit_blocked(rl, "u:admin", 132), 0);
	/* Other keys are unaffected. */
	assert_int_equal(ratelimit_blocked(rl, "u:other", 102), 0);
	free(rl);
}

static void
test_window_expires(void **state)
{
	struct ratelimit *rl = calloc(1, sizeof *rl);
	(void)state;

	ratelimit_init(rl, 3, 60, 30);
	ratelimit_fail(rl, "k", 0);
	ratelimit_fail(rl, "k", 10);
	/* The window restarted: two old failures no longer count. */
	assert_false(ratelimit_fail(rl, "k", 70));
	assert_false(ratelimit_fail(rl, "k", 71));
	assert_true(ratelimit_fail(rl, "k", 72));
	free(rl);
}

static void
test_reset(void **state)
{
	struct ratelimit *rl = calloc(1, sizeof *rl);
	(void)state;

	ratelimit_init(rl, 2, 60, 30);
	ratelimit_fail(rl, "k", 0);
	ratelimit_reset(rl, "k");
	assert_false(ratelimit_fail(rl, "k", 1));
	assert_true(ratelimit_fail(rl, "k", 2));
	assert_true(ratelimit_blocked(rl, "k", 3) > 0);
	free(rl);
}

static void
test_table_is_bounded(void **state)
{
	struct ratelimit *rl = calloc(1, sizeof *rl);
	char key[32];
	(void)state;

	ratelimit_init(rl, 1, 600, 600);
	assert_true(ratelimit_fail(rl, "victim", 0));
	/* Cycling through more keys than slots evicts the oldest entries
	 * instead of growing; the table never holds more than its slots. */
	for (int i = 0; i < RATELIMIT_SLOTS * 2; i++) {
		snprintf(key, sizeof key, "k%d", i);
		ratelimit_fail(rl, key, 1 + i);
	}
	snprintf(key, sizeof key, "k%d", RATELIMIT_SLOTS * 2 - 1);
	assert_true(ratelimit_blocked(rl, key, RATELIMIT_SLOTS * 2) > 0);
	assert_int_equal(ratelimit_blocked(rl, "victim", 2), 0);
	free(rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lock_after_max),
		cmocka_unit_test(test_window_expires),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_table_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
