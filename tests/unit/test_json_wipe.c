/* Unit tests: src/common/json_wipe.c — jansson's blocks are zero when
 * freed, so a parsed password does not stay in freed heap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_wipe.h"

#define SECRET "s3cret-Passw0rd-for-the-wipe-test"

static unsigned freed, dirty, held_secret_len;

/* Runs after the wipe, before free(): the whole block must be zero. */
static void
check_block(const void *p, size_t n)
{
	const unsigned char *b = p;

	freed++;
	for (size_t i = 0; i < n; i++)
		if (b[i]) {
			dirty++;
			break;
		}
	if (n >= strlen(SECRET))
		held_secret_len++;
}

static int
setup(void **state)
{
	(void)state;
	freed = dirty = held_secret_len = 0;
	json_wipe_install();
	json_wipe_set_hook(check_block);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	json_wipe_set_hook(NULL);
	return 0;
}

static void
test_parsed_password_is_wiped(void **state)
{
	json_error_t e;
	json_t *j;
	(void)state;

	j = json_loads("{\"username\":\"admin\",\"password\":\"" SECRET "\"}",
		JSON_REJECT_DUPLICATES, &e);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "password")), SECRET);
	json_decref(j);
	/* Strings, keys, the object and its hashtable went through our free,
	 * and every one of them was zero by then. */
	assert_true(freed >= 3);
	assert_true(held_secret_len >= 1);
	assert_int_equal(dirty, 0);
}

static void
test_built_and_dumped_objects_are_wiped(void **state)
{
	json_t *j = json_pack("{s:s, s:s}", "username", "u", "password", SECRET);
	char *s;
	(void)state;

	assert_non_null(j);
	s = json_dumps(j, JSON_COMPACT);
	assert_non_null(s);
	assert_non_null(strstr(s, SECRET));
	json_decref(j);
	assert_int_equal(dirty, 0);
	assert_true(freed >= 2);
	/* A dump is a plain malloc block: callers (and libmicrohttpd) may
	 * free() it directly, or wipe it through our free. */
	unsigned before = freed;
	json_wipe_free(s);
	assert_int_equal(freed, before + 1);
	assert_int_equal(dirty, 0);
	json_t *one = json_integer(1);
	s = json_dumps(one, JSON_ENCODE_ANY);
	json_decref(one);
	assert_non_null(s);
	free(s);
}

static void
test_free_wipes_the_whole_block(void **state)
{
	unsigned char *p = json_wipe_malloc(100);
	(void)state;

	assert_non_null(p);
	memset(p, 0xA5, 100);
	json_wipe_free(p);
	assert_int_equal(freed, 1);
	assert_int_equal(dirty, 0);
	json_wipe_free(NULL); /* NULL-safe, no hook call */
	assert_int_equal(freed, 1);
}

static unsigned hook_saw_nonzero;

static void
record_nonzero(const void *p, size_t n)
{
	(void)n;
	hook_saw_nonzero += ((const unsigned char *)p)[0] != 0;
}

/* The hook itself can tell: it would see the data if the wipe were
 * missing (guards the test above against a hook that sees nothing). */
static void
test_hook_sees_block_contents(void **state)
{
	unsigned char *p = malloc(16);
	(void)state;

	json_wipe_set_hook(record_nonzero);
	memset(p, 0x5A, 16);
	record_nonzero(p, 16);
	assert_int_equal(hook_saw_nonzero, 1);
	json_wipe_free(p);
	assert_int_equal(hook_saw_nonzero, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_parsed_password_is_wiped, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_built_and_dumped_objects_are_wiped,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_wipes_the_whole_block, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_hook_sees_block_contents, setup,
			teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
