/* deadline.c: results come back in time, a stuck call is abandoned, a
 * second call on a stuck key is refused at once (-EBUSY) instead of
 * sending one more thread into it, and the process-wide cap holds. The
 * "stuck" calls block on a pipe the test controls, so nothing here
 * depends on timing luck: bounds are generous and waits are explicit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/mounts/deadline.h"

static int gate[2] = { -1, -1 };

struct ctx {
	int in, out;
};

static int
quick_fn(void *arg)
{
	struct ctx *c = arg;

	c->out = c->in * 2;
	return 7;
}

/* Blocks until the test writes one byte into the gate. */
static int
gated_fn(void *arg)
{
	struct ctx *c = arg;
	char b;

	if (read(gate[0], &b, 1) != 1)
		return -EIO;
	c->out = c->in + 1;
	return 0;
}

static long
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000L + t.tv_nsec / 1000000L;
}

static int
threads(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Release n gated calls and wait until no worker is left. */
static void
open_gate(unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(write(gate[1], "x", 1), 1);
	for (int i = 0; i < 1000 && deadline_inflight() > 0; i++)
		usleep(10 * 1000);
	assert_int_equal(deadline_inflight(), 0);
}

static int
setup(void **state)
{
	(void)state;
	deadline_set_cap(DEADLINE_DEFAULT_CAP);
	return pipe(gate);
}

static int
teardown(void **state)
{
	(void)state;
	close(gate[0]);
	close(gate[1]);
	return 0;
}

static void
test_result_and_ctx_come_back(void **state)
{
	struct ctx c = { .in = 21 };
	(void)state;

	assert_int_equal(deadline_run("/mnt/a", quick_fn, &c, sizeof c, 5000), 7);
	assert_int_equal(c.out, 42);
	assert_int_equal(deadline_inflight(), 0);
	assert_int_equal(deadline_run("", quick_fn, &c, sizeof c, 5000), -EINVAL);
	assert_int_equal(deadline_run(NULL, quick_fn, &c, sizeof c, 5000), -EINVAL);
}

static void
test_stuck_key_is_busy_at_once(void **state)
{
	struct ctx c = { .in = 1, .out = -1 };
	(void)state;

	assert_int_equal(deadline_run("/mnt/hung", gated_fn, &c, sizeof c, 100),
		-ETIMEDOUT);
	assert_int_equal(c.out, -1); /* not written back after a timeout */
	assert_int_equal(deadline_stuck("/mnt/hung"), 1);
	assert_int_equal(deadline_inflight(), 1);
	int before = threads();
	long t0 = now_ms();
	for (int i = 0; i < 100; i++)
		assert_int_equal(deadline_run("/mnt/hung", gated_fn, &c, sizeof c, 5000),
			-EBUSY);
	/* 100 refusals, none of them waited for its 5 s deadline. */
	assert_true(now_ms() - t0 < 4000);
	assert_int_equal(threads(), before);
	assert_int_equal(deadline_inflight(), 1);
	/* Another key is not held up by the stuck one. */
	assert_int_equal(deadline_run("/mnt/ok", quick_fn, &c, sizeof c, 5000), 7);
	open_gate(1);
	/* The stuck call returned and freed itself: the key works again. */
	assert_int_equal(deadline_stuck("/mnt/hung"), 0);
	assert_int_equal(deadline_run("/mnt/hung", quick_fn, &c, sizeof c, 5000), 7);
}

static void
test_cap_bounds_threads(void **state)
{
	struct ctx c = { 0 };
	char key[32];
	(void)state;

	deadline_set_cap(3);
	assert_int_equal(deadline_cap(), 3);
	int before = threads();
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof key, "/mnt/k%d", i);
		int r = deadline_run(key, gated_fn, &c, sizeof c, i < 3 ? 50 : 5000);
		assert_int_equal(r, i < 3 ? -ETIMEDOUT : -EAGAIN);
	}
	assert_int_equal(deadline_inflight(), 3);
	assert_true(threads() <= before + 3);
	open_gate(3);
	deadline_set_cap(DEADLINE_DEFAULT_CAP);
	assert_int_equal(deadline_run("/mnt/k99", quick_fn, &c, sizeof c, 5000), 7);
}

struct racer {
	struct ctx c;
	int r;
};

static void *
racer_main(void *arg)
{
	struct racer *x = arg;

	x->r = deadline_run("/mnt/shared", gated_fn, &x->c, sizeof x->c, 20000);
	return NULL;
}

/* A second call on a key whose first call is running (not abandoned)
 * waits for it and then runs: one in flight per key, nobody refused. */
static void
test_same_key_waits_its_turn(void **state)
{
	struct racer x[2] = { { .c = { .in = 10 } }, { .c = { .in = 20 } } };
	pthread_t t[2];
	(void)state;

	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, racer_main, &x[i]), 0);
	for (int i = 0; i < 1000 && deadline_inflight() < 1; i++)
		usleep(10 * 1000);
	usleep(200 * 1000); /* both callers are in deadline_run by now */
	assert_int_equal(deadline_inflight(), 1);
	assert_int_equal(write(gate[1], "xx", 2), 2);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(x[0].r, 0);
	assert_int_equal(x[1].r, 0);
	assert_int_equal(x[0].c.out, 11);
	assert_int_equal(x[1].c.out, 21);
	assert_int_equal(deadline_inflight(), 0);
}

/* Opens the gate after a pause, from another thread. */
static void *
open_later(void *arg)
{
	(void)arg;
	usleep(300 * 1000);
	if (write(gate[1], "x", 1) != 1)
		return (void *)1;
	return NULL;
}

static void
test_patient_call_waits_for_a_stuck_one(void **state)
{
	struct ctx c = { .in = 1, .out = -1 };
	pthread_t t;
	(void)state;

	assert_int_equal(deadline_run("/mnt/slow", gated_fn, &c, sizeof c, 100),
		-ETIMEDOUT);
	assert_int_equal(deadline_stuck("/mnt/slow"), 1);
	/* Still stuck at the patient call's own deadline: -EBUSY, and no
	 * second worker was sent into the key meanwhile. */
	int before = threads();
	assert_int_equal(deadline_run_patient("/mnt/slow", quick_fn, &c, sizeof c, 200),
		-EBUSY);
	assert_int_equal(threads(), before);
	/* The stuck call returns (the server came back): the patient call
	 * runs after it instead of failing at once like deadline_run. */
	assert_int_equal(deadline_run("/mnt/slow", quick_fn, &c, sizeof c, 5000), -EBUSY);
	assert_int_equal(pthread_create(&t, NULL, open_later, NULL), 0);
	c.in = 4;
	assert_int_equal(deadline_run_patient("/mnt/slow", quick_fn, &c, sizeof c, 5000),
		7);
	assert_int_equal(c.out, 8);
	pthread_join(t, NULL);
	open_gate(0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_result_and_ctx_come_back, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_stuck_key_is_busy_at_once, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_cap_bounds_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_key_waits_its_turn, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_patient_call_waits_for_a_stuck_one,
			setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
