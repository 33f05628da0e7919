/* Unit tests: src/common/nq_buf.c — content and NUL, the hard cap and its
 * sticky overflow, geometric growth, steal/release, the libcurl sink, and
 * that a wiping buffer leaves no byte behind in memory it frees (seen
 * through -Wl,--wrap=free, malloc and realloc: the wrappers look at a block
 * just before the real free). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/nq_buf.h"

#define SECRET "s3cret-Passw0rd-for-the-nq_buf-wipe-test"

void *__real_malloc(size_t n);
void *__real_realloc(void *p, size_t n);
void __real_free(void *p);

static const void *watch; /* the block whose free we inspect */
static size_t watch_len;
static unsigned watch_freed, watch_dirty, n_malloc, n_realloc;

void *
__wrap_malloc(size_t n)
{
	n_malloc++;
	return __real_malloc(n);
}

void *
__wrap_realloc(void *p, size_t n)
{
	n_realloc++;
	return __real_realloc(p, n);
}

void
__wrap_free(void *p)
{
	if (p && p == watch) {
		const unsigned char *b = p;

		watch_freed++;
		for (size_t i = 0; i < watch_len; i++)
			if (b[i]) {
				watch_dirty++;
				break;
			}
		watch = NULL;
	}
	__real_free(p);
}

static void
watch_block(const struct nq_buf *b)
{
	watch = b->p;
	watch_len = b->cap;
	watch_freed = watch_dirty = 0;
}

static void
test_add_keeps_content_and_nul(void **state)
{
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(1024, false);

	(void)state;
	assert_string_equal(nq_buf_str(&b), "");
	assert_int_equal(nq_buf_add(&b, "abc", 3), 0);
	assert_int_equal(nq_buf_addf(&b, "%d-%s", 42, "x"), 0);
	assert_int_equal(nq_buf_add(&b, "\0z", 2), 0); /* binary safe */
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.p, "abc42-x\0z", 10); /* and NUL-terminated */
	assert_true(b.cap > b.len);
	assert_false(b.overflow);
}

static void
test_growth_is_geometric(void **state)
{
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(1 << 20, false);

	(void)state;
	n_malloc = n_realloc = 0;
	for (int i = 0; i < 4000; i++)
		assert_int_equal(nq_buf_add(&b, "x", 1), 0);
	/* 64, 128, ..., 4096: 7 allocations, not one per chunk. */
	assert_true(n_malloc + n_realloc <= 8);
	assert_int_equal(b.len, 4000);
	assert_true(b.cap >= 4001 && b.cap <= 8192);
}

static void
test_cap_refuses_whole_add_and_sticks(void **state)
{
	_cleanup_(nq_buf_release) struct nq_buf b;

	(void)state;
	nq_buf_init(&b, 10, false);
	assert_int_equal(nq_buf_add(&b, "12345678", 8), 0);
	assert_int_equal(nq_buf_add(&b, "abc", 3), -ENOSPC);
	assert_true(b.overflow);
	assert_string_equal(b.p, "12345678");              /* nothing of the refused add */
	assert_int_equal(nq_buf_add(&b, "9", 1), -ENOSPC); /* sticky */
	assert_int_equal(nq_buf_addf(&b, "%d", 9), -ENOSPC);
	assert_int_equal(b.len, 8);
	assert_true(b.cap <= 11);
	assert_null(nq_buf_steal(&b)); /* a short result is never handed out */
	assert_null(b.p);
	assert_false(b.overflow);
	assert_int_equal(b.max, 10);
}

static void
test_exactly_max_fits(void **state)
{
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(10, false);

	(void)state;
	assert_int_equal(nq_buf_addf(&b, "%s", "0123456789"), 0);
	assert_int_equal(b.cap, 11);
	assert_string_equal(b.p, "0123456789");
	assert_int_equal(nq_buf_add(&b, "", 0), 0);
	assert_int_equal(nq_buf_addf(&b, "%s", "a"), -ENOSPC);
	assert_string_equal(b.p, "0123456789");
}

static void
test_addf_longer_than_first_chunk(void **state)
{
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(4096, false);
	char big[1001];

	(void)state;
	memset(big, 'q', 1000);
	big[1000] = '\0';
	assert_int_equal(nq_buf_addf(&b, "<%s>", big), 0);
	assert_int_equal(b.len, 1002);
	assert_int_equal(b.p[0], '<');
	assert_int_equal(b.p[1001], '>');
	assert_int_equal(b.p[1002], '\0');
}

static void
test_steal_hands_over_and_resets(void **state)
{
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(64, true);
	_cleanup_free_ char *empty = NULL, *s = NULL;

	(void)state;
	empty = nq_buf_steal(&b);
	assert_non_null(empty);
	assert_string_equal(empty, "");
	assert_int_equal(nq_buf_addf(&b, "v=%u", 7u), 0);
	s = nq_buf_steal(&b);
	assert_string_equal(s, "v=7");
	assert_null(b.p);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	assert_true(b.wipe);
	assert_int_equal(nq_buf_add(&b, "again", 5), 0); /* reusable */
	assert_string_equal(b.p, "again");
}

static void
test_release_wipes_the_whole_block(void **state)
{
	struct nq_buf b = NQ_BUF_INIT(4096, true);

	(void)state;
	assert_int_equal(nq_buf_add(&b, SECRET, strlen(SECRET)), 0);
	watch_block(&b);
	nq_buf_release(&b);
	assert_int_equal(watch_freed, 1);
	assert_int_equal(watch_dirty, 0);
	assert_null(b.p);
	nq_buf_release(&b); /* twice is fine */
	nq_buf_release(NULL);
}

/* The same check on a buffer without wipe sees the secret: the check can
 * fail. */
static void
test_no_wipe_leaves_bytes(void **state)
{
	struct nq_buf b = NQ_BUF_INIT(4096, false);

	(void)state;
	assert_int_equal(nq_buf_add(&b, SECRET, strlen(SECRET)), 0);
	watch_block(&b);
	nq_buf_release(&b);
	assert_int_equal(watch_freed, 1);
	assert_int_equal(watch_dirty, 1);
}

static void
test_growth_of_wiping_buffer_wipes_old_block(void **state)
{
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(4096, true);
	char more[200];

	(void)state;
	assert_int_equal(nq_buf_add(&b, SECRET, strlen(SECRET)), 0);
	watch_block(&b);
	memset(more, 'm', sizeof more);
	n_realloc = 0;
	assert_int_equal(nq_buf_add(&b, more, sizeof more), 0);
	assert_int_equal(n_realloc, 0); /* realloc would free unwiped */
	assert_int_equal(watch_freed, 1);
	assert_int_equal(watch_dirty, 0);
	assert_int_equal(b.len, strlen(SECRET) + sizeof more);
	assert_memory_equal(b.p, SECRET, strlen(SECRET));
}

static void
test_write_cb(void **state)
{
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(8, false);
	char data[] = "abcdefghij";

	(void)state;
	assert_int_equal(nq_buf_write_cb(data, 1, 4, &b), 4);
	assert_int_equal(nq_buf_write_cb(data, 2, 2, &b), 4);
	assert_string_equal(b.p, "abcdabcd");
	assert_int_equal(nq_buf_write_cb(data, 1, 1, &b), 0); /* past the cap */
	assert_int_equal(nq_buf_write_cb(data, SIZE_MAX / 2, 3, &b), 0);
	assert_int_equal(b.len, 8);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_keeps_content_and_nul),
		cmocka_unit_test(test_growth_is_geometric),
		cmocka_unit_test(test_cap_refuses_whole_add_and_sticks),
		cmocka_unit_test(test_exactly_max_fits),
		cmocka_unit_test(test_addf_longer_than_first_chunk),
		cmocka_unit_test(test_steal_hands_over_and_resets),
		cmocka_unit_test(test_release_wipes_the_whole_block),
		cmocka_unit_test(test_no_wipe_leaves_bytes),
		cmocka_unit_test(test_growth_of_wiping_buffer_wipes_old_block),
		cmocka_unit_test(test_write_cb),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
