/* storage/leases: the lease record (strict parse of hostile bytes, format
 * round trip), the decision rule (absent, ours, held, expired, corrupt,
 * absurd expiry) and the file protocol on a temp directory with two
 * "agents": acquire, refuse, renew, lose, release, take over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/storage/leases.h"

#define A_ID "11111111-1111-4111-8111-111111111111"
#define B_ID "22222222-2222-4222-8222-222222222222"
#define VM "33333333-3333-4333-8333-333333333333"
#define VOL "44444444-4444-4444-8444-444444444444"
#define L_S 10
#define NAME ".smb-" VOL ".lease"

static const char
	good[] = "{\"agent_id\":\"" A_ID "\",\"host_name\":\"host-a\","
		 "\"vm_id\":\"" VM "\",\"volume_id\":\"" VOL "\","
		 "\"expires_at_ms\":20000,\"renewed_at_ms\":10000,"
		 "\"generation\":3,\"future_key\":true}";

static void
test_parse_good_and_round_trip(void **state)
{
	struct lease l, l2;
	char why[160] = "", buf[LEASE_FILE_MAX];
	int n;

	(void)state;
	assert_int_equal(lease_parse(good, strlen(good), &l, why, sizeof why), 0);
	assert_string_equal(l.agent_id, A_ID);
	assert_string_equal(l.host_name, "host-a");
	assert_int_equal(l.expires_at_ms, 20000);
	assert_int_equal(l.generation, 3);
	n = lease_format(&l, buf, sizeof buf);
	assert_true(n > 0 && buf[n - 1] == '\n');
	assert_int_equal(lease_parse(buf, (size_t)n, &l2, why, sizeof why), 0);
	assert_memory_equal(&l, &l2, sizeof l);
	assert_int_equal(lease_format(&l, buf, 40), -ENOSPC);
}

static void
expect_bad(const char *text, size_t len, const char *want)
{
	struct lease l;
	char why[160] = "";

	assert_int_equal(lease_parse(text, len, &l, why, sizeof why), -EINVAL);
	if (!strstr(why, want))
		fail_msg("why '%s' lacks '%s' for %.60s", why, want, text);
}

static void
test_parse_rejects_hostile_bytes(void **state)
{
	static char huge[LEASE_FILE_MAX + 2];
	const char nul[] = "{\"agent_id\"\0:1}";

	(void)state;
	expect_bad("", 0, "not JSON");
	expect_bad("\xff\xfe{", 3, "not JSON");
	expect_bad(nul, sizeof nul - 1, "not JSON");
	expect_bad("[1,2]", 5, "not a JSON object");
	expect_bad("{}", 2, "agent_id is missing");
	memset(huge, ' ', sizeof huge);
	expect_bad(huge, sizeof huge, "too large");
	expect_bad("{\"agent_id\":5}", 14, "agent_id must be a UUID");
	expect_bad("{\"agent_id\":\"../etc\"}", 21, "agent_id must be a UUID");
	expect_bad("{\"agent_id\":\"" A_ID "\",\"agent_id\":\"" A_ID "\"}",
		strlen("{\"agent_id\":\"" A_ID "\",\"agent_id\":\"" A_ID "\"}"),
		"not JSON");
#define PFX "{\"agent_id\":\"" A_ID "\",\"vm_id\":\"" VM "\",\"volume_id\":\"" VOL "\","
	expect_bad(PFX "\"host_name\":[1]}", strlen(PFX "\"host_name\":[1]}"),
		"host_name must be a string");
	expect_bad(PFX "\"host_name\":\"a\\nb\"}", strlen(PFX "\"host_name\":\"a\\nb\"}"),
		"host_name must be printable");
	expect_bad(PFX "\"host_name\":\"a\\u0000b\"}",
		strlen(PFX "\"host_name\":\"a\\u0000b\"}"), "not JSON");
	expect_bad(PFX "\"host_name\":\"h\",\"expires_at_ms\":\"soon\"}",
		strlen(PFX "\"host_name\":\"h\",\"expires_at_ms\":\"soon\"}"),
		"expires_at_ms must be a non-negative integer");
	expect_bad(PFX "\"host_name\":\"h\",\"expires_at_ms\":-1}",
		strlen(PFX "\"host_name\":\"h\",\"expires_at_ms\":-1}"),
		"expires_at_ms must be a non-negative integer");
	expect_bad(PFX "\"host_name\":\"h\",\"expires_at_ms\":1.5}",
		strlen(PFX "\"host_name\":\"h\",\"expires_at_ms\":1.5}"), "expires_at_ms");
	expect_bad(PFX "\"host_name\":\"h\",\"expires_at_ms\":1,\"renewed_at_ms\":1}",
		strlen(PFX "\"host_name\":\"h\",\"expires_at_ms\":1,\"renewed_at_ms\":1}"),
		"generation is missing");
#undef PFX
}

static struct lease_view
view_of(const char *agent, long long expires, long long mtime)
{
	struct lease_view v = { .present = true, .valid = true, .mtime_ms = mtime };

	snprintf(v.l.agent_id, sizeof v.l.agent_id, "%s", agent);
	snprintf(v.l.host_name, sizeof v.l.host_name, "h");
	snprintf(v.l.vm_id, sizeof v.l.vm_id, VM);
	snprintf(v.l.volume_id, sizeof v.l.volume_id, VOL);
	v.l.expires_at_ms = expires;
	return v;
}

static void
test_decide(void **state)
{
	const long long now = 1000000, L = L_S * 1000;
	struct lease_view v = { 0 };
	struct lease_decision d;

	(void)state;
	lease_decide(&v, A_ID, VOL, now, L_S, &d);
	assert_int_equal(d.v, LEASE_FREE);
	v = view_of(A_ID, now - 5, now - 100);
	lease_decide(&v, A_ID, VOL, now, L_S, &d);
	assert_int_equal(d.v, LEASE_OURS); /* ours, even expired */
	v = view_of(B_ID, now + 1, now);
	lease_decide(&v, A_ID, VOL, now, L_S, &d);
	assert_int_equal(d.v, LEASE_HELD);
	assert_int_equal(d.held_until_ms, now + 1);
	assert_false(d.corrupt);
	v = view_of(B_ID, now, now - L);
	lease_decide(&v, A_ID, VOL, now, L_S, &d);
	assert_int_equal(d.v, LEASE_EXPIRED); /* expiry is exclusive */
	/* Absurd: more than 10 × L ahead is corrupt, held until mtime + 10 L. */
	v = view_of(B_ID, now + 10 * L + 1, now - 1000);
	lease_decide(&v, A_ID, VOL, now, L_S, &d);
	assert_true(d.corrupt);
	assert_int_equal(d.v, LEASE_HELD);
	assert_int_equal(d.held_until_ms, now - 1000 + 10 * L);
	v = view_of(B_ID, now + 10 * L + 1, now - 10 * L);
	lease_decide(&v, A_ID, VOL, now, L_S, &d);
	assert_int_equal(d.v, LEASE_EXPIRED);
	v = view_of(B_ID, now + 10 * L, now);
	lease_decide(&v, A_ID, VOL, now, L_S, &d);
	assert_false(d.corrupt);
	/* Unreadable, or naming another volume: held until mtime + L. */
	v = (struct lease_view){ .present = true, .mtime_ms = now - 1 };
	lease_decide(&v, A_ID, VOL, now, L_S, &d);
	assert_true(d.corrupt);
	assert_int_equal(d.v, LEASE_HELD);
	assert_int_equal(d.held_until_ms, now - 1 + L);
	v.mtime_ms = now - L;
	lease_decide(&v, A_ID, VOL, now, L_S, &d);
	assert_int_equal(d.v, LEASE_EXPIRED);
	v = view_of(A_ID, now + 1, now);
	lease_decide(&v, A_ID, B_ID, now, L_S, &d);
	assert_true(d.corrupt);
	assert_int_equal(d.v, LEASE_HELD);
	assert_int_equal(lease_interval_ms(3), 1000);
	assert_int_equal(lease_interval_ms(15), 3000);
	assert_int_equal(lease_interval_ms(300), 60000);
	assert_int_equal(lease_period_ms(3), 500);
	assert_int_equal(lease_period_ms(4), 500);
	assert_int_equal(lease_period_ms(5), 1000);
	assert_int_equal(lease_period_ms(10), 2000);
	assert_int_equal(lease_period_ms(15), 3000);
	/* The bridge's io_deadline: 2 renew intervals - 1 s, at least 1 s;
	 * the fencer kills 2 intervals before expiry, so a request of the
	 * VMM's last instant is gone 1 s before the lease expires. */
	for (unsigned l = 3; l <= 300; l++) {
		unsigned w = lease_io_deadline_s(l);

		assert_true(w >= 1);
		assert_true(w * 1000 < 2 * lease_interval_ms(l) || w == 1);
		assert_true(w * 1000 <= 2 * lease_interval_ms(l) - 1000 || w == 1);
	}
	assert_int_equal(lease_io_deadline_s(3), 1);
	assert_int_equal(lease_io_deadline_s(8), 1);
	assert_int_equal(lease_io_deadline_s(10), 3);
	assert_int_equal(lease_io_deadline_s(15), 5);
	assert_int_equal(lease_io_deadline_s(300), 119);
}

/* ---- the file protocol on a temp dir ---- */

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/nqrust-test-leases-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
	char path[160];
	struct dirent *de;
	DIR *d = opendir(dir);

	(void)state;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' || strlen(de->d_name) > 2) {
			snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
	return rmdir(dir);
}

static void
op_for(struct lease_op *op, const char *agent, unsigned secs)
{
	memset(op, 0, sizeof *op);
	snprintf(op->dir, sizeof op->dir, "%s", dir);
	snprintf(op->name, sizeof op->name, NAME);
	snprintf(op->tmp, sizeof op->tmp, NAME ".%s.tmp", agent);
	snprintf(op->mine.agent_id, sizeof op->mine.agent_id, "%s", agent);
	snprintf(op->mine.host_name, sizeof op->mine.host_name, "host-%c", agent[0]);
	snprintf(op->mine.vm_id, sizeof op->mine.vm_id, VM);
	snprintf(op->mine.volume_id, sizeof op->mine.volume_id, VOL);
	op->lease_seconds = secs;
}

static void
put(const char *name, const char *text)
{
	char path[160];
	FILE *f;

	snprintf(path, sizeof path, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static bool
exists(const char *name)
{
	char path[160];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return access(path, F_OK) == 0;
}

static int
unlink_in(const char *name)
{
	char path[160];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	return unlink(path);
}

static void
age(const char *name, long long secs)
{
	char path[160];
	struct timespec ts[2];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	clock_gettime(CLOCK_REALTIME, &ts[0]);
	ts[0].tv_sec -= secs;
	ts[1] = ts[0];
	assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
test_acquire_refuse_renew_release(void **state)
{
	struct lease_op a, b;

	(void)state;
	op_for(&a, A_ID, L_S);
	op_for(&b, B_ID, L_S);
	assert_int_equal(lease_op_acquire(&a), 0);
	assert_int_equal(a.written_gen, 1);
	assert_int_equal(a.mine.expires_at_ms - a.mine.renewed_at_ms, L_S * 1000);
	assert_int_equal(lease_op_acquire(&b), LEASE_ACQ_HELD);
	assert_string_equal(b.seen.l.host_name, "host-1");
	assert_int_equal(lease_op_renew(&a), 0);
	assert_int_equal(a.written_gen, 2);
	assert_false(exists(NAME "." A_ID ".tmp"));
	/* B's release does not touch A's lease; B's renew finds it is not B's. */
	assert_int_equal(lease_op_release(&b), 0);
	assert_true(exists(NAME));
	assert_int_equal(lease_op_renew(&b), -ESTALE);
	assert_int_equal(lease_op_release(&a), 0);
	assert_false(exists(NAME));
	assert_int_equal(lease_op_renew(&a), -ESTALE); /* gone: lost */
	assert_int_equal(lease_op_acquire(&b), 0);
	assert_int_equal(lease_op_renew(&a), -ESTALE); /* taken: lost */
}

static void
test_late_expired_write_is_reclaimed(void **state)
{
	struct lease_op a, b;
	char buf[LEASE_FILE_MAX];

	(void)state;
	op_for(&a, A_ID, L_S);
	op_for(&b, B_ID, L_S);
	assert_int_equal(lease_op_acquire(&b), 0);
	/* A fenced long ago; its last renewal lands now, already expired. */
	a.mine.expires_at_ms = lease_now_ms() - 1;
	a.mine.generation = 1;
	assert_true(lease_format(&a.mine, buf, sizeof buf) > 0);
	put(NAME, buf);
	assert_int_equal(lease_op_renew(&b), 0);
	assert_true(b.reclaimed);
	assert_int_equal(lease_op_renew(&b), 0);
	assert_false(b.reclaimed);
	/* Unexpired: it really is A's now; B lost it. */
	a.mine.expires_at_ms = lease_now_ms() + 5000;
	assert_true(lease_format(&a.mine, buf, sizeof buf) > 0);
	put(NAME, buf);
	assert_int_equal(lease_op_renew(&b), -ESTALE);
}

static void
test_takeover_of_expired_and_corrupt(void **state)
{
	struct lease_op a, b;

	(void)state;
	op_for(&a, A_ID, 3);
	op_for(&b, B_ID, 3);
	assert_int_equal(lease_op_acquire(&a), 0);
	age(NAME, 1); /* mtime does not matter for a valid lease */
	assert_int_equal(lease_op_acquire(&b), LEASE_ACQ_HELD);
	/* Expired: rewrite A's lease with an expiry in the past. */
	a.mine.generation = 7;
	{
		char buf[LEASE_FILE_MAX];
		struct lease l = a.mine;

		l.expires_at_ms = lease_now_ms() - 1;
		assert_true(lease_format(&l, buf, sizeof buf) > 0);
		put(NAME, buf);
	}
	assert_int_equal(lease_op_acquire(&b), 0);
	assert_int_equal(b.written_gen, 8);
	assert_int_equal(lease_op_renew(&a), -ESTALE);
	assert_false(exists(NAME "." B_ID ".stale"));
	/* Corrupt: held until unwritten for a lease period. */
	put(NAME, "garbage");
	assert_int_equal(lease_op_acquire(&a), LEASE_ACQ_HELD);
	assert_true(a.d.corrupt);
	assert_string_equal(a.seen.why, "the file is not JSON");
	age(NAME, 4);
	assert_int_equal(lease_op_acquire(&a), 0);
	assert_int_equal(a.written_gen, 1);
}

static void
test_fresh_tmp_of_another_agent_blocks_create(void **state)
{
	struct lease_op a;

	(void)state;
	op_for(&a, A_ID, 3);
	/* B is between the unlink and the rename of its renewal. */
	put(NAME "." B_ID ".tmp", "{}");
	assert_int_equal(lease_op_acquire(&a), LEASE_ACQ_RACE);
	assert_false(exists(NAME));
	age(NAME "." B_ID ".tmp", 4); /* a crashed renewal's leftover */
	assert_int_equal(lease_op_acquire(&a), 0);
}

/* Several agents race for one lease: exactly one wins, whether the lease
 * is absent (O_EXCL) or expired (rename it away, check, O_EXCL). */
#define RACERS 8

struct racer {
	struct lease_op op;
	pthread_barrier_t *go;
	int r;
};

static void *
race(void *arg)
{
	struct racer *x = arg;

	pthread_barrier_wait(x->go);
	x->r = lease_op_acquire(&x->op);
	return NULL;
}

static void
race_once(void)
{
	static struct racer x[RACERS];
	pthread_t th[RACERS];
	pthread_barrier_t go;
	int won = 0;

	pthread_barrier_init(&go, NULL, RACERS);
	for (int i = 0; i < RACERS; i++) {
		char id[NQ_UUID_LEN + 1];

		snprintf(id, sizeof id, "%08x-2222-4222-8222-222222222222", i + 0xa0);
		/* A lease that outlives the race even under valgrind: a racer
		 * slowed past a short winner's expiry would rightly take it
		 * over (CI saw 2 winners with 3 s). */
		op_for(&x[i].op, id, 120);
		x[i].go = &go;
		assert_int_equal(pthread_create(&th[i], NULL, race, &x[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		assert_true(x[i].r == 0 || x[i].r == LEASE_ACQ_HELD ||
			    x[i].r == LEASE_ACQ_RACE);
		won += x[i].r == 0;
	}
	pthread_barrier_destroy(&go);
	assert_int_equal(won, 1);
}

static void
test_racing_agents_one_wins(void **state)
{
	struct lease_op a;

	(void)state;
	for (int round = 0; round < 20; round++) {
		race_once(); /* absent */
		age(NAME, 0);
		{
			char buf[LEASE_FILE_MAX];

			op_for(&a, A_ID, 3);
			a.mine.expires_at_ms = lease_now_ms() - 1;
			a.mine.generation = 1;
			assert_true(lease_format(&a.mine, buf, sizeof buf) > 0);
			put(NAME, buf);
		}
		race_once(); /* expired */
		assert_int_equal(unlink_in(NAME), 0);
	}
}

/* The takeover guard: a fresh one (another agent creating or taking over
 * the lease right now) loses the round and stays; a stale one (a crashed
 * agent's) is removed, and the next round wins. */
static void
test_guard_fresh_and_stale(void **state)
{
	struct lease_op a;

	(void)state;
	op_for(&a, A_ID, 30);
	put(NAME ".guard", "");
	assert_int_equal(lease_op_acquire(&a), LEASE_ACQ_RACE);
	assert_int_equal(lease_op_acquire(&a), LEASE_ACQ_RACE);
	age(NAME ".guard", 31);
	assert_int_equal(lease_op_acquire(&a), LEASE_ACQ_RACE);
	assert_int_equal(lease_op_acquire(&a), 0);
	assert_int_equal(unlink_in(NAME ".guard"), -1); /* released */
	assert_int_equal(lease_op_release(&a), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good_and_round_trip),
		cmocka_unit_test(test_parse_rejects_hostile_bytes),
		cmocka_unit_test(test_decide),
		cmocka_unit_test_setup_teardown(test_acquire_refuse_renew_release, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_takeover_of_expired_and_corrupt,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_fresh_tmp_of_another_agent_blocks_create, setup, teardown),
		cmocka_unit_test_setup_teardown(test_racing_agents_one_wins, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_late_expired_write_is_reclaimed,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_guard_fresh_and_stale, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
