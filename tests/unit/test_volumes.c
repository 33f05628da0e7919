/* Volumes through the localfile storage kind on a temp dir (storage/
 * volumes.c, inflight.c): create empty and sparse, clone an image keeping
 * its holes, list, delete; the temp file is removed on every failure and a
 * stale one is swept; a delete cancels a creation in progress (paused at
 * its debug gate, not one that happens to be slow); and the order of
 * deletes and creations of one id in the inflight table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/storage/inflight.h"
#include "agent/storage/localdirs.h"
#include "agent/storage/volumes.h"

#define BID "localfile-default"
#define VID "6f2c1d3e-8a4b-4c5d-9e6f-000000000001"
#define VID2 "6f2c1d3e-8a4b-4c5d-9e6f-000000000002"
#define MIB (1024 * 1024)
#define WAIT_MS 30000

static const struct storage_kind_ops *const K = &storage_kind_localfile;
static struct agent a;
static char root[] = "/tmp/nq-vol-XXXXXX";
static char local_root[PATH_MAX], images[PATH_MAX], gates[PATH_MAX];

static void
sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int
setup(void **state)
{
	char state_dir[PATH_MAX], dir[PATH_MAX];
	struct nq_error err = { 0 };

	(void)state;
	memcpy(root, "/tmp/nq-vol-XXXXXX", sizeof root);
	if (!mkdtemp(root))
		return -1;
	snprintf(local_root, sizeof local_root, "%s/local", root);
	snprintf(images, sizeof images, "%s/images", root);
	snprintf(gates, sizeof gates, "%s/gates", root);
	snprintf(state_dir, sizeof state_dir, "%s/state", root);
	if (mkdir(images, 0700) < 0 || mkdir(state_dir, 0700) < 0 || mkdir(gates, 0700) < 0)
		return -1;
	memset(&a, 0, sizeof a);
	a.cfg.local_root = local_root;
	a.image_dirfd = open(images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	a.state_dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	a.cred_dirfd = -1;
	if (a.image_dirfd < 0 || a.state_dirfd < 0 || localdirs_new(&a.locals) < 0 ||
		localdirs_restore(&a) < 0)
		return -1;
	return localdirs_attach(&a, BID, NULL, dir, sizeof dir, &err);
}

static int
teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	localdirs_free(a.locals);
	close(a.image_dirfd);
	close(a.state_dirfd);
	unsetenv("NQRUST_DEBUG_GATE_DIR");
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	return system(cmd) == 0 ? 0 : -1;
}

static void
local_path(const char *name, char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "%s/%s", local_root, name);
}

static bool
exists(const char *name)
{
	char p[PATH_MAX + 64];

	local_path(name, p, sizeof p);
	return access(p, F_OK) == 0;
}

/* No temp file of any creation is left in the backend's directory. */
static void
assert_no_tmp(void)
{
	DIR *d = opendir(local_root);
	struct dirent *de;

	assert_non_null(d);
	while ((de = readdir(d)))
		assert_null(strstr(de->d_name, ".tmp"));
	closedir(d);
}

/* A 4 MiB image with data at 0 and at 3 MiB, holes elsewhere. */
static void
make_image(const char *name)
{
	char p[PATH_MAX + 64], block[4096];
	int fd;

	snprintf(p, sizeof p, "%s/%s", images, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	memset(block, 'A', sizeof block);
	assert_int_equal(pwrite(fd, block, sizeof block, 0), sizeof block);
	memset(block, 'B', sizeof block);
	assert_int_equal(pwrite(fd, block, sizeof block, 3 * MIB), sizeof block);
	assert_int_equal(ftruncate(fd, 4 * MIB), 0);
	close(fd);
}

static void
test_create_empty_list_delete(void **state)
{
	struct volume_info info;
	struct nq_error err = { 0 };
	char want[PATH_MAX + 64];
	struct stat st;
	json_t *arr;

	(void)state;
	assert_int_equal(volumes_create(&a, K, BID, VID, NULL, 8 * MIB, &info, &err), 0);
	local_path("local-" VID ".raw", want, sizeof want);
	assert_string_equal(info.path, want);
	assert_int_equal(info.size_bytes, 8 * MIB);
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_size, 8 * MIB);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_true(info.allocated_bytes >= 0 && info.allocated_bytes < MIB); /* sparse */
	assert_no_tmp();

	assert_int_equal(volumes_list(&a, K, BID, &arr, &err), 0);
	assert_int_equal(json_array_size(arr), 1);
	assert_string_equal(
		json_string_value(json_object_get(json_array_get(arr, 0), "volume_id")),
		VID);
	json_decref(arr);

	/* A second creation of the id is refused and leaves the file. */
	assert_int_equal(volumes_create(&a, K, BID, VID, NULL, MIB, &info, &err), -EEXIST);
	assert_string_equal(err.code, "volume_exists");
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_size, 8 * MIB);

	assert_int_equal(volumes_delete(&a, K, BID, VID, &err), 0);
	assert_false(exists("local-" VID ".raw"));
	assert_int_equal(volumes_delete(&a, K, BID, VID, &err), 0); /* idempotent */
	assert_int_equal(volumes_list(&a, K, BID, &arr, &err), 0);
	assert_int_equal(json_array_size(arr), 0);
	json_decref(arr);
}

/* A clone copies only the image's data, keeps its holes, and grows to a
 * larger size_bytes. */
static void
test_clone_sparse(void **state)
{
	struct volume_info info;
	struct nq_error err = { 0 };
	char buf[4096];
	int fd;

	(void)state;
	make_image("base.raw");
	assert_int_equal(volumes_create(&a, K, BID, VID, "base.raw", 0, &info, &err), 0);
	assert_int_equal(info.size_bytes, 4 * MIB);
	assert_true(info.copy.bytes_written >= 8192);
	assert_true(info.copy.bytes_written < 4 * MIB);
	assert_true(info.allocated_bytes < 2 * MIB);
	fd = open(info.path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, sizeof buf, 0), sizeof buf);
	assert_int_equal(buf[0], 'A');
	assert_int_equal(buf[4095], 'A');
	assert_int_equal(pread(fd, buf, sizeof buf, 3 * MIB), sizeof buf);
	assert_int_equal(buf[0], 'B');
	assert_int_equal(pread(fd, buf, sizeof buf, 2 * MIB), sizeof buf);
	assert_int_equal(buf[0], 0);
	close(fd);

	assert_int_equal(
		volumes_create(&a, K, BID, VID2, "base.raw", 16 * MIB, &info, &err), 0);
	assert_int_equal(info.size_bytes, 16 * MIB);
	assert_no_tmp();
}

/* Every failure leaves no temp file and no volume. */
static void
test_failures_leave_nothing(void **state)
{
	struct volume_info info;
	struct nq_error err = { 0 };

	(void)state;
	make_image("base.raw");
	assert_int_equal(volumes_create(&a, K, BID, VID, NULL, 0, &info, &err), -EINVAL);
	assert_string_equal(err.code, "missing_field");
	assert_string_equal(err.field, "size_bytes");

	memset(&err, 0, sizeof err);
	assert_true(volumes_create(&a, K, BID, VID, "nope.raw", 0, &info, &err) < 0);
	assert_string_equal(err.code, "image_not_found");
	assert_false(exists("local-" VID ".raw"));
	assert_no_tmp();

	/* Smaller than the image: the clone was written, then refused. */
	memset(&err, 0, sizeof err);
	assert_true(volumes_create(&a, K, BID, VID, "base.raw", MIB, &info, &err) < 0);
	assert_string_equal(err.code, "invalid_field");
	assert_string_equal(err.field, "size_bytes");
	assert_false(exists("local-" VID ".raw"));
	assert_no_tmp();

	memset(&err, 0, sizeof err);
	assert_true(volumes_create(&a, K, "localfile-nope", VID, NULL, MIB, &info, &err) <
		    0);
	assert_string_equal(err.code, "not_found");
}

/* A temp file nobody wrote for long is what an interrupted clone left: the
 * next creation sweeps it; a recent one may be another creation's. */
static void
test_stale_tmp_swept(void **state)
{
	const char *stale = ".local-" VID2 ".raw.tmp";
	const char *fresh = ".local-6f2c1d3e-8a4b-4c5d-9e6f-000000000003.raw.tmp";
	struct timespec old[2] = { { time(NULL) - 3600, 0 }, { time(NULL) - 3600, 0 } };
	struct volume_info info;
	struct nq_error err = { 0 };
	char p[PATH_MAX + 64];
	int fd;

	(void)state;
	local_path(stale, p, sizeof p);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(futimens(fd, old), 0);
	close(fd);
	local_path(fresh, p, sizeof p);
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);

	assert_int_equal(volumes_create(&a, K, BID, VID, NULL, MIB, &info, &err), 0);
	assert_false(exists(stale));
	assert_true(exists(fresh));
}

struct create_job {
	pthread_t th;
	int r;
	struct nq_error err;
	struct volume_info info;
};

static void *
create_main(void *arg)
{
	struct create_job *j = arg;

	j->r = volumes_create(&a, K, BID, VID, "base.raw", 0, &j->info, &j->err);
	return NULL;
}

/* A delete cancels the creation of its id in progress (held at the clone
 * gate, data written, nothing final), waits for it to clean up, and
 * leaves neither the volume nor its temp file. */
static void
test_delete_cancels_creation(void **state)
{
	struct create_job job = { 0 };
	struct nq_error err = { 0 };
	char wait_file[PATH_MAX + 32], reached[PATH_MAX + 32];
	int fd;

	(void)state;
	make_image("base.raw");
	setenv("NQRUST_DEBUG_GATE_DIR", gates, 1);
	snprintf(wait_file, sizeof wait_file, "%s/clone.wait", gates);
	snprintf(reached, sizeof reached, "%s/clone.reached", gates);
	fd = open(wait_file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(pthread_create(&job.th, NULL, create_main, &job), 0);
	for (int waited = 0; waited < WAIT_MS && access(reached, F_OK) < 0; waited += 10)
		sleep_ms(10);
	assert_int_equal(access(reached, F_OK), 0);
	assert_true(exists(".local-" VID ".raw.tmp")); /* the clone is in there */

	assert_int_equal(volumes_delete(&a, K, BID, VID, &err), 0);
	pthread_join(job.th, NULL);
	assert_int_equal(job.r, -ECANCELED);
	assert_string_equal(job.err.code, "cancelled");
	assert_false(exists("local-" VID ".raw"));
	assert_no_tmp();
	unlink(wait_file);
	unsetenv("NQRUST_DEBUG_GATE_DIR");

	/* A creation after the delete is not cancelled by it. */
	memset(&job, 0, sizeof job);
	create_main(&job);
	assert_int_equal(job.r, 0);
	assert_true(exists("local-" VID ".raw"));
}

struct begin_job {
	pthread_t th;
	bool deleting;
	unsigned wait_secs;
	unsigned long seq;
	int r;
	bool done;
};

static pthread_mutex_t jobs_lock = PTHREAD_MUTEX_INITIALIZER;

static void *
begin_main(void *arg)
{
	struct begin_job *j = arg;
	unsigned long seq = 0;
	int r = inflight_begin(VID, j->deleting, j->wait_secs, &seq);

	pthread_mutex_lock(&jobs_lock);
	j->r = r;
	j->seq = seq;
	j->done = true;
	pthread_mutex_unlock(&jobs_lock);
	return NULL;
}

static bool
job_done(struct begin_job *j)
{
	bool d;

	pthread_mutex_lock(&jobs_lock);
	d = j->done;
	pthread_mutex_unlock(&jobs_lock);
	return d;
}

/* A creation that arrives while a delete of its id runs waits for that
 * delete (and is -EBUSY when it lasts past the wait); a delete cancels
 * only the creations that began before it. */
static void
test_inflight_order(void **state)
{
	struct begin_job create = { .deleting = false, .wait_secs = 60 };
	unsigned long del, c1, c2, d2;

	(void)state;
	assert_int_equal(inflight_begin(VID, true, 60, &del), 0);
	assert_true(inflight_has(VID));
	assert_int_equal(inflight_begin(VID, false, 0, &c1), -EBUSY);
	assert_int_equal(pthread_create(&create.th, NULL, begin_main, &create), 0);
	/* It must still be waiting: give it ample time to (wrongly) pass. */
	sleep_ms(300);
	assert_false(job_done(&create));
	inflight_end(del);
	pthread_join(create.th, NULL);
	assert_int_equal(create.r, 0);
	assert_true(create.seq > del);
	c1 = create.seq;

	/* Other ids are not held up by it. */
	assert_int_equal(inflight_begin(VID2, false, 0, &c2), 0);
	inflight_end(c2);

	/* A delete now cancels c1 (earlier); a creation after the delete's
	 * end is new and not cancelled. */
	assert_false(inflight_cancelled(&c1));
	assert_int_equal(inflight_begin(VID, true, 60, &d2), 0);
	inflight_cancel_wait(VID, d2, 0); /* c1 is still registered: times out */
	assert_true(inflight_cancelled(&c1));
	inflight_end(c1);
	inflight_end(d2);
	assert_false(inflight_has(VID));
	assert_int_equal(inflight_begin(VID, false, 0, &c2), 0);
	assert_false(inflight_cancelled(&c2));
	inflight_end(c2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_empty_list_delete, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_clone_sparse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failures_leave_nothing, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_stale_tmp_swept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_cancels_creation, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_inflight_order, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
