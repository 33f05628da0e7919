/* Unit tests: src/manager/auth/auth.c and ratelimit.c helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <ctype.h>
#include <string.h>

#include "manager/auth/auth.h"

static int
setup(void **state)
{
	(void)state;
	return auth_init();
}

static void
test_hash_verify(void **state)
{
	char h[AUTH_HASH_MAX];
	(void)state;

	assert_int_equal(auth_hash_password("correct horse", 13, h), 0);
	assert_true(strncmp(h, "$argon2id$", 10) == 0);
	assert_null(strstr(h, "correct horse"));
	assert_true(auth_verify_password(h, "correct horse", 13));
	assert_false(auth_verify_password(h, "correct hors", 12));
	assert_false(auth_verify_password(h, "Correct horse", 13));
	assert_false(auth_verify_password("not a hash", "x", 1));
}

static void
test_tokens_and_digest(void **state)
{
	char a[AUTH_TOKEN_LEN + 1], b[AUTH_TOKEN_LEN + 1], d[AUTH_DIGEST_LEN + 1];
	(void)state;

	auth_new_token(a);
	auth_new_token(b);
	assert_int_equal(strlen(a), AUTH_TOKEN_LEN);
	assert_string_not_equal(a, b);
	for (size_t i = 0; i < AUTH_TOKEN_LEN; i++)
		assert_true(isxdigit((unsigned char)a[i]) && !isupper((unsigned char)a[i]));
	auth_digest("abc", d);
	assert_string_equal(d,
		"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_true(auth_digest_equal(d, d));
	auth_digest("abd", a);
	assert_false(auth_digest_equal(d, a));
	assert_false(auth_digest_equal(d, "ba78"));
}

static void
test_uuid(void **state)
{
	char u[AUTH_UUID_LEN + 1];
	(void)state;

	auth_new_uuid(u);
	assert_int_equal(strlen(u), 36);
	assert_int_equal(u[8], '-');
	assert_int_equal(u[13], '-');
	assert_int_equal(u[14], '4');
	assert_true(strchr("89ab", u[19]) != NULL);
	for (size_t i = 0; i < 36; i++)
		assert_false(isupper((unsigned char)u[i]));
}

static void
test_generated_password(void **state)
{
	char p[21];
	(void)state;

	auth_new_password(p, 20);
	assert_int_equal(strlen(p), 20);
	for (size_t i = 0; i < 20; i++)
		assert_true(isalnum((unsigned char)p[i]));
}

static void
test_cookie(void **state)
{
	char buf[80];
	(void)state;

	assert_int_equal(auth_cookie_value("a=1; nqrust_session=abc; b=2",
				 "nqrust_session", buf, sizeof buf),
		0);
	assert_string_equal(buf, "abc");
	assert_int_equal(
		auth_cookie_value("nqrust_session=xyz", "nqrust_session", buf, sizeof buf),
		0);
	assert_string_equal(buf, "xyz");
	/* A cookie whose name merely ends or starts the same does not match. */
	assert_int_equal(auth_cookie_value("x_nqrust_session=1; nqrust_session2=2",
				 "nqrust_session", buf, sizeof buf),
		-ENOENT);
	assert_int_equal(auth_cookie_value("", "nqrust_session", buf, sizeof buf), -ENOENT);
	assert_int_equal(
		auth_cookie_value("nqrust_session=0123456789", "nqrust_session", buf, 5),
		-ENOSPC);
}

static void
test_bearer(void **state)
{
	(void)state;
	assert_string_equal(auth_bearer("Bearer abc"), "abc");
	assert_string_equal(auth_bearer("bearer   abc"), "abc");
	assert_null(auth_bearer("Basic abc"));
	assert_null(auth_bearer("Bearer "));
	assert_null(auth_bearer(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_verify),
		cmocka_unit_test(test_tokens_and_digest),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_generated_password),
		cmocka_unit_test(test_cookie),
		cmocka_unit_test(test_bearer),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
