/* Unit tests: src/manager/services/claims.c, the backend status classification
 * (storage_status_of) and the agent's broken-connection errnos. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "manager/services/claims.h"
#include "common/nq_error.h"
#include "manager/manager.h"
#include "manager/services/storage.h"

static void
test_claim_try_busy_release(void **state)
{
	struct nq_error err = { 0 };
	(void)state;

	assert_int_equal(claim_try("vm:a", "the VM", &err), 0);
	assert_int_equal(claim_try("vm:a", "the VM", &err), -EBUSY);
	assert_string_equal(err.code, "busy");
	assert_int_equal(nq_error_http_status(err.code), 409);
	/* Another object is never affected. */
	assert_int_equal(claim_try("vm:b", "the VM", NULL), 0);
	assert_false(claim_cancelled("vm:a"));
	assert_true(claim_cancel("vm:a"));
	assert_true(claim_cancelled("vm:a"));
	assert_false(claim_cancel("vm:zzz"));
	claim_release("vm:a");
	claim_release("vm:b");
	assert_false(claim_cancelled("vm:a"));
	assert_int_equal(claim_try("vm:a", "the VM", NULL), 0);
	claim_release("vm:a");
}

static void *
release_later(void *arg)
{
	struct timespec t = { 0, 100 * 1000 * 1000 };

	nanosleep(&t, NULL);
	claim_release(arg);
	return NULL;
}

static void
test_claim_wait(void **state)
{
	struct nq_error err = { 0 };
	pthread_t t;
	(void)state;

	assert_int_equal(claim_try("backend:x", "b", NULL), 0);
	assert_int_equal(claim_wait("backend:x", 50, "the backend", &err), -EBUSY);
	assert_string_equal(err.code, "busy");
	assert_int_equal(pthread_create(&t, NULL, release_later, "backend:x"), 0);
	assert_int_equal(claim_wait("backend:x", 10000, "the backend", NULL), 0);
	pthread_join(t, NULL);
	claim_release("backend:x");
}

/* Background upkeep never makes an operation fail with busy: the
 * operation waits for it; upkeep never takes what an operation holds. */
static void
test_claim_background(void **state)
{
	pthread_t t;
	(void)state;

	assert_true(claim_try_background("backend:bg"));
	assert_false(claim_try_background("backend:bg"));
	assert_int_equal(pthread_create(&t, NULL, release_later, "backend:bg"), 0);
	assert_int_equal(claim_try("backend:bg", "the backend", NULL), 0);
	pthread_join(t, NULL);
	/* Now an operation holds it: upkeep stands aside, operations are busy. */
	assert_false(claim_try_background("backend:bg"));
	assert_int_equal(claim_try("backend:bg", "the backend", NULL), -EBUSY);
	claim_release("backend:bg");
	assert_true(claim_try_background("backend:bg"));
	claim_release("backend:bg");
}

static void
test_status_of(void **state)
{
	(void)state;
	assert_string_equal(storage_status_of("smb_auth_failed"), "auth_failed");
	assert_string_equal(storage_status_of("smb_access_denied"), "access_denied");
	assert_string_equal(storage_status_of("smb_unreachable"), "unreachable");
	assert_string_equal(storage_status_of("smb_timeout"), "unreachable");
	assert_string_equal(storage_status_of("agent_unavailable"), "unreachable");
	assert_string_equal(storage_status_of("no_space"), "full");
	assert_string_equal(storage_status_of("smb_share_not_found"), "not_found");
	assert_string_equal(storage_status_of("whatever"), "error");
}

static void
test_error_table(void **state)
{
	(void)state;
	assert_int_equal(nq_error_http_status("no_space"), 507);
	assert_int_equal(nq_error_http_status("smb_access_denied"), 422);
	assert_int_equal(nq_error_http_status("smb_auth_failed"), 422);
	assert_int_equal(nq_error_http_status("cancelled"), 409);
	assert_int_equal(nq_error_http_status("agent_unavailable"), 503);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_claim_try_busy_release),
		cmocka_unit_test(test_claim_wait),
		cmocka_unit_test(test_claim_background),
		cmocka_unit_test(test_status_of),
		cmocka_unit_test(test_error_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
