/* The mount table's state machine (mounts/mounts.c, backends.c) with a
 * fake driver behind struct mount_ops: one mount per identity shared and
 * reference-counted by backends, reuse, detach and unmount at zero,
 * concurrent requests for one identity waiting for a single attempt (its
 * success or its failure), failure paths, and mounting again when a share
 * went away. Nothing is really mounted: the fake records mount points. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "agent/mounts/internal.h"
#include "agent/mounts/mounts.h"

#define ID_A "0b8e2c6a-4f1d-4c55-9a3e-00000000000a"
#define ID_B "0b8e2c6a-4f1d-4c55-9a3e-00000000000b"
#define NTHREADS 4
/* Generous: the machine is shared; nothing here waits on luck. */
#define WAIT_MS 30000

static struct fake {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned mounts, unmounts, checks, probes;
	bool hold;        /* a mount blocks while set */
	bool in_mount;    /* a mount call is blocked on hold */
	const char *fail; /* mount fails with this code */
	bool probe_fail;  /* probe_writable fails */
	char mounted[8][PATH_MAX];
} fake = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER };

static int
fake_is_mounted(const char *mount_point, const char *source)
{
	int r = 0;

	(void)source;
	pthread_mutex_lock(&fake.lock);
	for (size_t i = 0; i < ARRAY_SIZE(fake.mounted); i++)
		if (!strcmp(fake.mounted[i], mount_point))
			r = 1;
	pthread_mutex_unlock(&fake.lock);
	return r;
}

static void
forget_mounted(const char *mount_point)
{
	for (size_t i = 0; i < ARRAY_SIZE(fake.mounted); i++)
		if (!strcmp(fake.mounted[i], mount_point))
			fake.mounted[i][0] = '\0';
}

static int
fake_mount(struct agent *a, const struct smb_mount_spec *s, const char *cred_path,
	const char *mount_point, bool *kernel_unavailable, enum mount_driver *ret_driver,
	struct nq_error *err)
{
	int r = 0;

	(void)a, (void)s, (void)cred_path, (void)kernel_unavailable;
	pthread_mutex_lock(&fake.lock);
	fake.mounts++;
	fake.in_mount = true;
	pthread_cond_broadcast(&fake.cond);
	while (fake.hold)
		pthread_cond_wait(&fake.cond, &fake.lock);
	fake.in_mount = false;
	if (fake.fail) {
		r = nq_error_setr(err, -EACCES, fake.fail, NULL, "fake mount failure");
	} else {
		for (size_t i = 0; i < ARRAY_SIZE(fake.mounted); i++)
			if (!fake.mounted[i][0]) {
				snprintf(fake.mounted[i], PATH_MAX, "%s", mount_point);
				break;
			}
		*ret_driver = DRIVER_KERNEL;
	}
	pthread_mutex_unlock(&fake.lock);
	return r;
}

static int
fake_unmount(struct agent *a, const char *mount_point)
{
	(void)a;
	pthread_mutex_lock(&fake.lock);
	fake.unmounts++;
	forget_mounted(mount_point);
	pthread_mutex_unlock(&fake.lock);
	rmdir(mount_point);
	return 0;
}

static int
fake_check(struct agent *a, const struct smb_mount_spec *s, const char *cred_path,
	const char *mount_point, struct nq_error *err)
{
	(void)a, (void)s, (void)cred_path, (void)mount_point, (void)err;
	pthread_mutex_lock(&fake.lock);
	fake.checks++;
	pthread_mutex_unlock(&fake.lock);
	return 0;
}

static int
fake_probe(const struct smb_mount_spec *s, const char *mount_point, const char *subdir,
	int timeout_ms, struct nq_error *err)
{
	bool fail;

	(void)s, (void)mount_point, (void)subdir, (void)timeout_ms;
	pthread_mutex_lock(&fake.lock);
	fake.probes++;
	fail = fake.probe_fail;
	pthread_mutex_unlock(&fake.lock);
	if (fail)
		return nq_error_setr(err, -EROFS, "smb_not_writable", NULL,
			"fake: read-only");
	return 0;
}

static const struct mount_ops fake_ops = {
	.mount = fake_mount,
	.unmount = fake_unmount,
	.check_credentials = fake_check,
	.probe_writable = fake_probe,
	.is_mounted = fake_is_mounted,
};

static struct agent a;
static char root[] = "/tmp/nq-mtab-XXXXXX";
static char base[PATH_MAX], state_dir[PATH_MAX];

static int
setup(void **state)
{
	(void)state;
	pthread_mutex_lock(&fake.lock);
	fake.mounts = fake.unmounts = fake.checks = fake.probes = 0;
	fake.hold = fake.in_mount = fake.probe_fail = false;
	fake.fail = NULL;
	memset(fake.mounted, 0, sizeof fake.mounted);
	pthread_mutex_unlock(&fake.lock);
	memcpy(root, "/tmp/nq-mtab-XXXXXX", sizeof root);
	if (!mkdtemp(root))
		return -1;
	snprintf(base, sizeof base, "%s/mnt", root);
	snprintf(state_dir, sizeof state_dir, "%s/state", root);
	if (mkdir(state_dir, 0700) < 0)
		return -1;
	memset(&a, 0, sizeof a);
	a.cfg.probe_timeout = 5;
	a.cfg.cred_dir = root;
	a.state_dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	a.cred_dirfd = a.image_dirfd = -1;
	if (a.state_dirfd < 0)
		return -1;
	return mount_table_new(&fake_ops, &a.mounts);
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	mount_table_free(a.mounts);
	a.mounts = NULL;
	close(a.state_dirfd);
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

static struct smb_backend
request(const char *id, const char *share)
{
	struct smb_backend mr = { 0 };

	snprintf(mr.id, sizeof mr.id, "%s", id);
	snprintf(mr.spec.server, sizeof mr.spec.server, "srv.example");
	snprintf(mr.spec.share, sizeof mr.spec.share, "%s", share);
	snprintf(mr.spec.version, sizeof mr.spec.version, "default");
	snprintf(mr.mount_base, sizeof mr.mount_base, "%s", base);
	return mr;
}

static unsigned
count(unsigned *field)
{
	unsigned n;

	pthread_mutex_lock(&fake.lock);
	n = *field;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

/* The table's entries and the references of the first. */
static size_t
entries(unsigned *ret_refs)
{
	size_t n = 0;

	pthread_mutex_lock(&a.mounts->lock);
	for (struct mount_entry *e = a.mounts->mounts; e; e = e->next) {
		if (n == 0 && ret_refs)
			*ret_refs = e->refs;
		n++;
	}
	pthread_mutex_unlock(&a.mounts->lock);
	return n;
}

static bool
record_exists(const char *id)
{
	char p[PATH_MAX + 64];

	snprintf(p, sizeof p, "%s/backends/%s.json", state_dir, id);
	return access(p, F_OK) == 0;
}

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Attach mounts once; a second backend of the same identity shares the
 * mount (no second mount, but its credentials-free guest spec needs no
 * check); detach drops references and unmounts at zero only. */
static void
test_attach_reuse_detach(void **state)
{
	struct smb_backend ra = request(ID_A, "vms"), rb = request(ID_B, "vms");
	struct mount_result res_a, res_b;
	struct nq_error err = { 0 };
	char want[PATH_MAX + 64];
	unsigned refs = 0;

	(void)state;
	snprintf(ra.subdir, sizeof ra.subdir, "a");
	assert_int_equal(mounts_attach(&a, &ra, &res_a, &err), 0);
	snprintf(want, sizeof want, "%s/srv.example:vms", base);
	assert_string_equal(res_a.mount_point, want);
	snprintf(want, sizeof want, "%s/srv.example:vms/a", base);
	assert_string_equal(res_a.volume_dir, want);
	assert_int_equal(res_a.driver, DRIVER_KERNEL);
	assert_true(record_exists(ID_A));

	assert_int_equal(mounts_attach(&a, &rb, &res_b, &err), 0);
	assert_string_equal(res_b.mount_point, res_a.mount_point);
	assert_string_equal(res_b.volume_dir, res_a.mount_point); /* no subdir */
	assert_int_equal(count(&fake.mounts), 1);
	assert_int_equal(count(&fake.probes), 2);
	assert_int_equal(count(&fake.checks), 0); /* guest: nothing to prove */
	assert_int_equal(entries(&refs), 1);
	assert_int_equal(refs, 2);

	/* Attaching again is idempotent: still two references. */
	assert_int_equal(mounts_attach(&a, &ra, &res_a, &err), 0);
	assert_int_equal(entries(&refs), 1);
	assert_int_equal(refs, 2);
	assert_int_equal(count(&fake.mounts), 1);

	assert_int_equal(mounts_detach(&a, ID_A, &err), 0);
	assert_false(record_exists(ID_A));
	assert_int_equal(count(&fake.unmounts), 0);
	assert_int_equal(entries(&refs), 1);
	assert_int_equal(refs, 1);
	assert_int_equal(mounts_detach(&a, ID_B, &err), 0);
	assert_int_equal(count(&fake.unmounts), 1);
	assert_int_equal(entries(NULL), 0);
	assert_int_equal(fake_is_mounted(res_a.mount_point, NULL), 0);
	/* Detaching an unknown backend is not an error. */
	assert_int_equal(mounts_detach(&a, ID_A, &err), 0);
	assert_int_equal(count(&fake.unmounts), 1);
}

/* Another identity gets its own mount and mount point; moving a backend
 * to another share releases (and unmounts) its old one. */
static void
test_identities_and_move(void **state)
{
	struct smb_backend ra = request(ID_A, "vms"), rb = request(ID_B, "other");
	struct mount_result res_a, res_b;
	struct nq_error err = { 0 };

	(void)state;
	assert_int_equal(mounts_attach(&a, &ra, &res_a, &err), 0);
	assert_int_equal(mounts_attach(&a, &rb, &res_b, &err), 0);
	assert_string_not_equal(res_a.mount_point, res_b.mount_point);
	assert_int_equal(count(&fake.mounts), 2);
	assert_int_equal(entries(NULL), 2);

	ra = request(ID_A, "other");
	assert_int_equal(mounts_attach(&a, &ra, &res_a, &err), 0);
	assert_string_equal(res_a.mount_point, res_b.mount_point);
	assert_int_equal(count(&fake.mounts), 2);
	assert_int_equal(count(&fake.unmounts), 1); /* "vms" had no one left */
	assert_int_equal(entries(NULL), 1);
	assert_int_equal(mounts_detach(&a, ID_A, &err), 0);
	assert_int_equal(mounts_detach(&a, ID_B, &err), 0);
	assert_int_equal(count(&fake.unmounts), 2);
}

struct attach_job {
	pthread_t th;
	char id[NQ_UUID_LEN + 1];
	int r;
	struct nq_error err;
	struct mount_result res;
};

static void *
attach_main(void *arg)
{
	struct attach_job *j = arg;
	struct smb_backend mr = request(j->id, "vms");

	j->r = mounts_attach(&a, &mr, &j->res, &j->err);
	return NULL;
}

/* Start NTHREADS attaches of one identity while the mount is held, and
 * return once one is in the mount and all the others wait for it. */
static void
start_concurrent(struct attach_job jobs[NTHREADS])
{
	unsigned waiters = 0;

	pthread_mutex_lock(&fake.lock);
	fake.hold = true;
	pthread_mutex_unlock(&fake.lock);
	for (int i = 0; i < NTHREADS; i++) {
		snprintf(jobs[i].id, sizeof jobs[i].id,
			"0b8e2c6a-4f1d-4c55-9a3e-10000000000%d", i);
		assert_int_equal(pthread_create(&jobs[i].th, NULL, attach_main, &jobs[i]),
			0);
	}
	for (int waited = 0; waited < WAIT_MS && waiters < NTHREADS - 1; waited += 10) {
		sleep_ms(10);
		pthread_mutex_lock(&a.mounts->lock);
		waiters = a.mounts->mounts ? a.mounts->mounts->waiters : 0;
		pthread_mutex_unlock(&a.mounts->lock);
	}
	assert_int_equal(waiters, NTHREADS - 1);
	pthread_mutex_lock(&fake.lock);
	assert_true(fake.in_mount);
	pthread_mutex_unlock(&fake.lock);
	assert_int_equal(count(&fake.mounts), 1);
}

static void
finish_concurrent(struct attach_job jobs[NTHREADS])
{
	pthread_mutex_lock(&fake.lock);
	fake.hold = false;
	pthread_cond_broadcast(&fake.cond);
	pthread_mutex_unlock(&fake.lock);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(jobs[i].th, NULL);
}

/* Concurrent requests for one identity wait for the one mount and then
 * all share it. */
static void
test_concurrent_share_one_mount(void **state)
{
	struct attach_job jobs[NTHREADS] = { 0 };
	unsigned refs = 0;

	(void)state;
	start_concurrent(jobs);
	finish_concurrent(jobs);
	for (int i = 0; i < NTHREADS; i++) {
		assert_int_equal(jobs[i].r, 0);
		assert_string_equal(jobs[i].res.mount_point, jobs[0].res.mount_point);
	}
	assert_int_equal(count(&fake.mounts), 1);
	assert_int_equal(entries(&refs), 1);
	assert_int_equal(refs, NTHREADS);
}

/* The one attempt fails: every waiter gets its error, nothing stays in
 * the table, and the next request tries again. */
static void
test_concurrent_failure(void **state)
{
	struct attach_job jobs[NTHREADS] = { 0 };
	struct smb_backend mr = request(ID_A, "vms");
	struct mount_result res;
	struct nq_error err = { 0 };
	char mp[PATH_MAX + 32];

	(void)state;
	pthread_mutex_lock(&fake.lock);
	fake.fail = "smb_auth_failed";
	pthread_mutex_unlock(&fake.lock);
	start_concurrent(jobs);
	finish_concurrent(jobs);
	for (int i = 0; i < NTHREADS; i++) {
		assert_true(jobs[i].r < 0);
		assert_string_equal(jobs[i].err.code, "smb_auth_failed");
	}
	assert_int_equal(count(&fake.mounts), 1);
	assert_int_equal(entries(NULL), 0);
	snprintf(mp, sizeof mp, "%s/srv.example:vms", base);
	assert_int_equal(access(mp, F_OK), -1); /* the mount point is removed */
	assert_false(record_exists(jobs[0].id));

	pthread_mutex_lock(&fake.lock);
	fake.fail = NULL;
	pthread_mutex_unlock(&fake.lock);
	assert_int_equal(mounts_attach(&a, &mr, &res, &err), 0);
	assert_int_equal(count(&fake.mounts), 2);
	assert_int_equal(mounts_detach(&a, ID_A, &err), 0);
}

/* Mounted but not writable: the attach fails, nothing references the
 * mount, so it is unmounted again. */
static void
test_probe_failure_unmounts(void **state)
{
	struct smb_backend mr = request(ID_A, "vms");
	struct mount_result res;
	struct nq_error err = { 0 };

	(void)state;
	pthread_mutex_lock(&fake.lock);
	fake.probe_fail = true;
	pthread_mutex_unlock(&fake.lock);
	assert_true(mounts_attach(&a, &mr, &res, &err) < 0);
	assert_string_equal(err.code, "smb_not_writable");
	assert_int_equal(count(&fake.mounts), 1);
	assert_int_equal(count(&fake.unmounts), 1);
	assert_int_equal(entries(NULL), 0);
	assert_false(record_exists(ID_A));
}

/* A pin of a live mount reuses it; a share that went away is mounted
 * again in place by the next pin; an unknown backend is not_found. */
static void
test_pin_remount_unknown(void **state)
{
	struct smb_backend mr = request(ID_A, "vms");
	struct mount_result res;
	struct nq_error err = { 0 };
	enum mount_driver drv = DRIVER_AUTO;
	char dir[PATH_MAX];

	(void)state;
	assert_int_equal(mounts_pin_volume_dir(&a, ID_B, dir, sizeof dir, &drv, &err),
		-ENOENT);
	assert_string_equal(err.code, "not_found");

	assert_int_equal(mounts_attach(&a, &mr, &res, &err), 0);
	assert_int_equal(mounts_pin_volume_dir(&a, ID_A, dir, sizeof dir, &drv, &err), 0);
	assert_string_equal(dir, res.volume_dir);
	assert_int_equal(drv, DRIVER_KERNEL);
	assert_int_equal(count(&fake.mounts), 1);
	mounts_unpin(&a, ID_A);

	/* The share went away behind the table's back. */
	pthread_mutex_lock(&fake.lock);
	forget_mounted(res.mount_point);
	pthread_mutex_unlock(&fake.lock);
	assert_int_equal(mounts_pin_volume_dir(&a, ID_A, dir, sizeof dir, &drv, &err), 0);
	assert_int_equal(count(&fake.mounts), 2);
	assert_int_equal(fake_is_mounted(res.mount_point, NULL), 1);
	assert_int_equal(entries(NULL), 1);

	mounts_unpin(&a, ID_A);
	assert_int_equal(count(&fake.unmounts), 0);
	assert_int_equal(mounts_detach(&a, ID_A, &err), 0);
	assert_int_equal(count(&fake.unmounts), 1);
	assert_int_equal(entries(NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_attach_reuse_detach, setup, teardown),
		cmocka_unit_test_setup_teardown(test_identities_and_move, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_share_one_mount, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_probe_failure_unmounts, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_pin_remount_unknown, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
