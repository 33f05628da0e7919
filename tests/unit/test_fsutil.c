/* fsutil: atomic writes, confinement beneath a directory fd, mkdir, small
 * file reads and the sparse copy. Each test works in its own temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/fsutil.h"

/* These definitions take precedence over libc's: a test can make openat2
 * look absent (kernels before 5.6) to exercise the O_NOFOLLOW walk, and
 * make copy_file_range fail the way it does between a local file and
 * FUSE. */
static bool openat2_absent;

long
syscall(long n, ...)
{
	static long (*real)(long, ...);
	long a[6];
	va_list ap;

	if (n == SYS_openat2 && openat2_absent) {
		errno = ENOSYS;
		return -1;
	}
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	va_start(ap, n);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	return real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}

static int cfr_fail_errno;
static unsigned cfr_calls;
static int ficlone_fail_errno;
static unsigned ficlone_calls;

/* FICLONE can be made to fail; everything else goes to libc's ioctl. */
int
ioctl(int fd, unsigned long req, ...)
{
	static int (*real)(int, unsigned long, ...);
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (req == FICLONE) {
		ficlone_calls++;
		if (ficlone_fail_errno) {
			errno = ficlone_fail_errno;
			return -1;
		}
	}
	if (!real)
		real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
	return real(fd, req, arg);
}

ssize_t
copy_file_range(int in, off_t *in_off, int out, off_t *out_off, size_t len, unsigned flags)
{
	cfr_calls++;
	if (cfr_fail_errno) {
		errno = cfr_fail_errno;
		return -1;
	}
	return syscall(SYS_copy_file_range, in, in_off, out, out_off, len, flags);
}

struct tmpdir {
	char path[64];
	int fd;
};

static int
setup(void **state)
{
	struct tmpdir *t = calloc(1, sizeof *t);

	openat2_absent = false;
	cfr_fail_errno = 0;
	if (!t)
		return -1;
	snprintf(t->path, sizeof t->path, "/tmp/nq-fsutil-XXXXXX");
	if (!mkdtemp(t->path))
		return -1;
	t->fd = open(t->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	*state = t;
	return t->fd < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	struct tmpdir *t = *state;
	char cmd[128];

	close(t->fd);
	/* Test-only cleanup of a directory we created. */
	snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", t->path);
	if (system(cmd) != 0)
		return -1;
	free(t);
	return 0;
}

static unsigned
count_entries(int dirfd)
{
	unsigned n = 0;
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY);
	DIR *d = fdopendir(fd);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	closedir(d);
	return n;
}

static void
test_write_atomic(void **state)
{
	struct tmpdir *t = *state;
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	mode_t old = umask(0777); /* would leave 0000 if it applied */

	assert_int_equal(fs_write_atomic(t->fd, "cred", "username=a\n", 11, 0600), 0);
	umask(old);
	assert_int_equal(fstatat(t->fd, "cred", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(fs_read_file(t->fd, "cred", 1024, &buf, &len), 0);
	assert_int_equal(len, 11);
	assert_string_equal(buf, "username=a\n");
	free(buf);

	/* Replace: new content, mode as asked, still exactly one entry. */
	assert_int_equal(fs_write_atomic(t->fd, "cred", "x", 1, 0640), 0);
	assert_int_equal(fstatat(t->fd, "cred", &st, 0), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	assert_int_equal(st.st_size, 1);
	assert_int_equal(count_entries(t->fd), 1);

	/* Empty content is fine. */
	assert_int_equal(fs_write_atomic(t->fd, "empty", "", 0, 0600), 0);
	assert_int_equal(fstatat(t->fd, "empty", &st, 0), 0);
	assert_int_equal(st.st_size, 0);
}

static void
test_write_atomic_refuses(void **state)
{
	struct tmpdir *t = *state;
	struct stat st;

	assert_int_equal(fs_write_atomic(t->fd, "a/b", "x", 1, 0600), -EINVAL);
	assert_int_equal(fs_write_atomic(t->fd, "..", "x", 1, 0600), -EINVAL);
	assert_int_equal(fs_write_atomic(t->fd, "", "x", 1, 0600), -EINVAL);
	/* Writing into a directory that is not writable fails and leaves no
	 * temp file behind; a non-directory dirfd also fails cleanly. */
	assert_int_equal(mkdirat(t->fd, "sub", 0700), 0);
	assert_int_equal(symlinkat("/etc/passwd", t->fd, "link"), 0);
	/* rename over a symlink replaces the link, never writes through it. */
	assert_int_equal(fs_write_atomic(t->fd, "link", "y", 1, 0600), 0);
	assert_int_equal(fstatat(t->fd, "link", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_true(S_ISREG(st.st_mode));
	/* rename onto a directory fails: the temp file must be gone. */
	assert_int_equal(fs_write_atomic(t->fd, "sub", "z", 1, 0600), -EISDIR);
	assert_int_equal(count_entries(t->fd), 2);
}

static void
test_open_beneath(void **state)
{
	struct tmpdir *t = *state;
	int fd, sub;

	assert_int_equal(mkdirat(t->fd, "a", 0700), 0);
	assert_int_equal(mkdirat(t->fd, "a/b", 0700), 0);
	fd = fs_open_beneath(t->fd, "a/b/file", O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	fd = fs_open_beneath(t->fd, "a//b/./file", O_RDONLY, 0);
	assert_true(fd >= 0);
	close(fd);

	assert_true(fs_open_beneath(t->fd, "../x", O_RDONLY, 0) < 0);
	assert_true(fs_open_beneath(t->fd, "a/../../x", O_RDONLY, 0) < 0);
	assert_true(fs_open_beneath(t->fd, "/etc/passwd", O_RDONLY, 0) < 0);
	assert_int_equal(fs_open_beneath(t->fd, "", O_RDONLY, 0), -EINVAL);
	assert_int_equal(fs_open_beneath(t->fd, NULL, O_RDONLY, 0), -EINVAL);

	/* Symlinks are not followed, anywhere in the path. */
	assert_int_equal(symlinkat("/etc", t->fd, "esc"), 0);
	assert_int_equal(symlinkat("b", t->fd, "a/inner"), 0);
	assert_int_equal(symlinkat("/etc/passwd", t->fd, "pw"), 0);
	assert_true(fs_open_beneath(t->fd, "esc/passwd", O_RDONLY, 0) < 0);
	assert_true(fs_open_beneath(t->fd, "pw", O_RDONLY, 0) < 0);
	assert_true(fs_open_beneath(t->fd, "a/inner/file", O_RDONLY, 0) < 0);
	/* ...nor created through. */
	assert_true(fs_open_beneath(t->fd, "pw", O_WRONLY | O_CREAT, 0600) < 0);

	sub = fs_open_beneath(t->fd, "a", O_RDONLY | O_DIRECTORY, 0);
	assert_true(sub >= 0);
	assert_true(fs_open_beneath(sub, "../esc", O_RDONLY, 0) < 0);
	close(sub);
}

static void
test_open_beneath_fallback(void **state)
{
	openat2_absent = true;
	test_open_beneath(state);
	openat2_absent = false;
}

static void
test_mkdir_beneath(void **state)
{
	struct tmpdir *t = *state;
	struct stat st;
	int fd, again;
	mode_t old = umask(0077);

	fd = fs_mkdir_beneath(t->fd, "x/y/z", 0750);
	umask(old);
	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0750);
	close(fd);
	assert_int_equal(fstatat(t->fd, "x/y/z", &st, 0), 0);
	again = fs_mkdir_beneath(t->fd, "x/y/z", 0750);
	assert_true(again >= 0);
	close(again);

	assert_int_equal(symlinkat("/tmp", t->fd, "x/link"), 0);
	assert_true(fs_mkdir_beneath(t->fd, "x/link/evil", 0700) < 0);
	assert_int_equal(fstatat(AT_FDCWD, "/tmp/evil", &st, 0), -1);
	assert_true(fs_mkdir_beneath(t->fd, "../up", 0700) < 0);
	assert_true(fs_mkdir_beneath(t->fd, "/abs", 0700) < 0);
	assert_int_equal(fs_write_atomic(t->fd, "file", "", 0, 0600), 0);
	assert_true(fs_mkdir_beneath(t->fd, "file/sub", 0700) < 0);
}

static void
test_mkdir_p(void **state)
{
	struct tmpdir *t = *state;
	char p[160];
	struct stat st;
	mode_t old = umask(0077);

	snprintf(p, sizeof p, "%s/m/n//o/", t->path);
	assert_int_equal(fs_mkdir_p(p, 0755), 0);
	umask(old);
	snprintf(p, sizeof p, "%s/m/n/o", t->path);
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0755);
	assert_int_equal(fs_mkdir_p(p, 0755), 0); /* idempotent */
	assert_int_equal(fs_mkdir_p("relative/path", 0755), -EINVAL);
	snprintf(p, sizeof p, "%s/m/../q", t->path);
	assert_int_equal(fs_mkdir_p(p, 0755), -EINVAL);
	assert_int_equal(fs_write_atomic(t->fd, "f", "", 0, 0600), 0);
	snprintf(p, sizeof p, "%s/f/g", t->path);
	assert_int_equal(fs_mkdir_p(p, 0755), -ENOTDIR);
}

static void
test_read_file_cap(void **state)
{
	struct tmpdir *t = *state;
	char *buf = (char *)0x1;
	size_t len = 77;

	assert_int_equal(fs_write_atomic(t->fd, "f", "0123456789", 10, 0600), 0);
	assert_int_equal(fs_read_file(t->fd, "f", 9, &buf, &len), -EFBIG);
	assert_ptr_equal(buf, (char *)0x1); /* untouched */
	assert_int_equal(len, 77);
	assert_int_equal(fs_read_file(t->fd, "f", 10, &buf, &len), 0);
	assert_int_equal(len, 10);
	assert_string_equal(buf, "0123456789");
	free(buf);
	assert_int_equal(fs_read_file(t->fd, "missing", 10, &buf, &len), -ENOENT);
	assert_int_equal(mkdirat(t->fd, "d", 0700), 0);
	assert_int_equal(fs_read_file(t->fd, "d", 10, &buf, &len), -EINVAL);
}

#define MiB (1024 * 1024)

/* 64 MiB with three data extents; the rest are holes. */
static int
make_sparse_src(int dirfd, const char *name, unsigned char *pattern, size_t plen)
{
	static const off_t offs[] = { 0, 10 * MiB, 40 * MiB + 4096 };
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	assert_true(fd >= 0);
	for (size_t i = 0; i < plen; i++)
		pattern[i] = (unsigned char)(i * 7 + 3);
	for (size_t i = 0; i < sizeof offs / sizeof offs[0]; i++)
		assert_int_equal(pwrite(fd, pattern, plen, offs[i]), (ssize_t)plen);
	assert_int_equal(ftruncate(fd, 64 * MiB), 0);
	return fd;
}

static void
assert_same_content(int a, int b)
{
	static char ba[MiB], bb[MiB];
	struct stat sa, sb;

	assert_int_equal(fstat(a, &sa), 0);
	assert_int_equal(fstat(b, &sb), 0);
	assert_int_equal(sa.st_size, sb.st_size);
	for (off_t off = 0; off < sa.st_size; off += MiB) {
		assert_int_equal(pread(a, ba, MiB, off), MiB);
		assert_int_equal(pread(b, bb, MiB, off), MiB);
		if (memcmp(ba, bb, MiB) != 0)
			fail_msg("content differs in MiB at %lld", (long long)off);
	}
}

static void
test_sparse_copy(void **state)
{
	struct tmpdir *t = *state;
	static unsigned char pattern[3 * MiB];
	struct copy_stats stats = { 0 };
	struct stat ss, ds;
	int src = make_sparse_src(t->fd, "src", pattern, sizeof pattern);
	int dst = openat(t->fd, "dst", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	assert_true(dst >= 0);
	ficlone_calls = 0;
	assert_int_equal(fs_sparse_copy(src, dst, &stats), 0);
	assert_int_equal(ficlone_calls, 1);
	assert_same_content(src, dst);
	assert_int_equal(fstat(src, &ss), 0);
	assert_int_equal(fstat(dst, &ds), 0);
	/* Allocation stays close to the 9 MiB of data, far from 64 MiB. */
	assert_true((uint64_t)ds.st_blocks * 512 < 16ULL * MiB);
	assert_int_equal(stats.bytes_written,
		stats.bytes_cloned + stats.bytes_server + stats.bytes_client);
	if (stats.method == COPY_METHOD_CLONE) {
		/* A reflinking file system (btrfs, xfs) shares the whole file. */
		assert_int_equal(stats.bytes_cloned, 64 * MiB);
		assert_int_equal(stats.bytes_server + stats.bytes_client, 0);
		assert_string_equal(copy_method_name(stats.method), "clone");
		close(src);
		close(dst);
		return;
	}
	/* ext4, tmpfs: copy_file_range inside one file system. */
	assert_int_equal(stats.method, COPY_METHOD_SERVER);
	assert_string_equal(copy_method_name(stats.method), "server_copy");
	assert_int_equal(stats.bytes_client, 0);
	assert_int_equal(stats.offload_errno, 0);
	if (stats.extents == 1) {
		/* A file system without SEEK_HOLE support: all data. */
		assert_int_equal(stats.bytes_written, 64 * MiB);
	} else {
		assert_int_equal(stats.extents, 3);
		assert_true(stats.bytes_written >= 9ULL * MiB);
		assert_true(stats.bytes_written < 12ULL * MiB);
	}
	close(src);
	close(dst);
}

static void
test_sparse_copy_edge(void **state)
{
	struct tmpdir *t = *state;
	struct copy_stats stats = { .extents = 99 };
	int a = openat(t->fd, "empty", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int b = openat(t->fd, "b", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	int h = openat(t->fd, "hole", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	struct stat st;

	assert_true(a >= 0 && b >= 0 && h >= 0);
	/* Empty source into a non-empty destination: the result is empty. */
	assert_int_equal(pwrite(b, "junk", 4, 0), 4);
	assert_int_equal(fs_sparse_copy(a, b, &stats), 0);
	assert_int_equal(stats.extents, 0);
	assert_int_equal(stats.bytes_written, 0);
	assert_int_equal(fstat(b, &st), 0);
	assert_int_equal(st.st_size, 0);
	/* All hole: size carried, no data. */
	assert_int_equal(ftruncate(h, 5 * MiB), 0);
	assert_int_equal(fs_sparse_copy(h, b, &stats), 0);
	assert_int_equal(fstat(b, &st), 0);
	assert_int_equal(st.st_size, 5 * MiB);
	assert_true(stats.bytes_written == 0 || stats.bytes_written == 5 * MiB);
	/* Same file and non-regular files are refused. */
	assert_int_equal(fs_sparse_copy(a, a, &stats), -EINVAL);
	assert_int_equal(fs_sparse_copy(t->fd, b, &stats), -EINVAL);
	close(a);
	close(b);
	close(h);
}

static void
test_sparse_copy_other_fs(void **state)
{
	/* /dev/shm (tmpfs) to the test dir: copy_file_range may take EXDEV
	 * or the generic path; either way the bytes must match. */
	struct tmpdir *t = *state;
	static unsigned char pattern[MiB + 123];
	struct copy_stats stats = { 0 };
	char shm[] = "/dev/shm/nq-fsutil-XXXXXX";
	int src, dst, sfd = mkstemp(shm);

	if (sfd < 0)
		skip();
	close(sfd);
	unlink(shm);
	src = open(shm, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(src >= 0);
	for (size_t i = 0; i < sizeof pattern; i++)
		pattern[i] = (unsigned char)(i ^ (i >> 8));
	assert_int_equal(pwrite(src, pattern, sizeof pattern, 3 * MiB),
		(ssize_t)sizeof pattern);
	assert_int_equal(ftruncate(src, 8 * MiB), 0);
	dst = openat(t->fd, "copy", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(dst >= 0);
	assert_int_equal(fs_sparse_copy(src, dst, &stats), 0);
	assert_same_content(src, dst);
	assert_true(stats.bytes_written >= sizeof pattern);
	close(src);
	close(dst);
	unlink(shm);
}

static void
test_sparse_copy_fallback(void **state)
{
	/* copy_file_range refuses (EXDEV): one attempt, then pread/pwrite for
	 * every extent. */
	static const int errs[] = { EXDEV, EOPNOTSUPP, EINVAL, ENOSYS };
	struct tmpdir *t = *state;
	static unsigned char pattern[3 * MiB];

	for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
		struct copy_stats stats = { 0 };
		char name[16];
		int src, dst;

		snprintf(name, sizeof name, "src%zu", i);
		src = make_sparse_src(t->fd, name, pattern, sizeof pattern);
		snprintf(name, sizeof name, "dst%zu", i);
		dst = openat(t->fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		assert_true(dst >= 0);
		cfr_fail_errno = errs[i];
		cfr_calls = 0;
		assert_int_equal(fs_sparse_copy(src, dst, &stats), 0);
		cfr_fail_errno = 0;
		assert_int_equal(cfr_calls, 1);
		assert_same_content(src, dst);
		assert_true(stats.bytes_written >= 9ULL * MiB);
		if (stats.method != COPY_METHOD_CLONE) {
			assert_int_equal(stats.method, COPY_METHOD_CLIENT);
			assert_string_equal(copy_method_name(stats.method), "client_copy");
			assert_int_equal(stats.bytes_client, stats.bytes_written);
			assert_int_equal(stats.bytes_server, 0);
			assert_int_equal(stats.offload_errno, errs[i]);
		}
		close(src);
		close(dst);
	}
	/* Any other copy_file_range error is reported, not papered over. */
	{
		struct copy_stats stats = { .extents = 42 };
		int src = make_sparse_src(t->fd, "srcio", pattern, sizeof pattern);
		int dst = openat(t->fd, "dstio", O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		cfr_fail_errno = EIO;
		assert_int_equal(fs_sparse_copy(src, dst, &stats), -EIO);
		cfr_fail_errno = 0;
		assert_int_equal(stats.extents, 42); /* untouched */
		close(src);
		close(dst);
	}
}

static void
test_sparse_copy_clone_refused(void **state)
{
	/* FICLONE refused the ways file systems refuse it: the extents are
	 * copied instead, holes kept; any other FICLONE error is reported. */
	static const int refused[] = { EOPNOTSUPP, EXDEV, EINVAL, ENOTTY };
	struct tmpdir *t = *state;
	static unsigned char pattern[3 * MiB];

	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		struct copy_stats stats = { 0 };
		char name[16];
		int src, dst;
		struct stat ds;

		snprintf(name, sizeof name, "csrc%zu", i);
		src = make_sparse_src(t->fd, name, pattern, sizeof pattern);
		snprintf(name, sizeof name, "cdst%zu", i);
		dst = openat(t->fd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		assert_true(dst >= 0);
		/* Leftover bytes in dst must not survive as data. */
		assert_int_equal(pwrite(dst, "junk", 4, 20 * MiB), 4);
		ficlone_fail_errno = refused[i];
		ficlone_calls = cfr_calls = 0;
		assert_int_equal(fs_sparse_copy(src, dst, &stats), 0);
		ficlone_fail_errno = 0;
		assert_int_equal(ficlone_calls, 1);
		assert_true(cfr_calls >= 1);
		assert_int_equal(stats.method, COPY_METHOD_SERVER);
		assert_int_equal(stats.bytes_cloned, 0);
		assert_true(stats.bytes_server >= 9ULL * MiB);
		assert_same_content(src, dst);
		assert_int_equal(fstat(dst, &ds), 0);
		assert_true((uint64_t)ds.st_blocks * 512 < 16ULL * MiB);
		close(src);
		close(dst);
	}
	{
		struct copy_stats stats = { .method = 77 };
		int src = make_sparse_src(t->fd, "csrcio", pattern, sizeof pattern);
		int dst = openat(t->fd, "cdstio", O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		ficlone_fail_errno = EIO;
		cfr_calls = 0;
		assert_int_equal(fs_sparse_copy(src, dst, &stats), -EIO);
		ficlone_fail_errno = 0;
		assert_int_equal(cfr_calls, 0);
		assert_int_equal(stats.method, 77); /* untouched */
		close(src);
		close(dst);
	}
	assert_string_equal(copy_method_name(0), "none");
	/* fs_try_clone on its own: refused leaves dst empty, errors pass. */
	{
		int src = make_sparse_src(t->fd, "tcsrc", pattern, sizeof pattern);
		int dst = openat(t->fd, "tcdst", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
		struct stat st;
		int r;

		assert_int_equal(pwrite(dst, "junk", 4, 0), 4);
		ficlone_fail_errno = EOPNOTSUPP;
		assert_int_equal(fs_try_clone(src, dst), 0);
		assert_int_equal(fstat(dst, &st), 0);
		assert_int_equal(st.st_size, 0);
		ficlone_fail_errno = EIO;
		assert_int_equal(fs_try_clone(src, dst), -EIO);
		ficlone_fail_errno = 0;
		/* The real ioctl: a reflink where the file system can. */
		r = fs_try_clone(src, dst);
		assert_true(r == 0 || r == 1);
		if (r == 1)
			assert_same_content(src, dst);
		close(src);
		close(dst);
	}
}

static void
test_copy_ranges(void **state)
{
	/* The extent map of a sparse file, and a copy of just those ranges:
	 * server-side where copy_file_range works, refused outright with
	 * FS_COPY_OFFLOAD_ONLY, through this process otherwise. */
	struct tmpdir *t = *state;
	static unsigned char pattern[3 * MiB];
	struct fs_range *ext = NULL;
	struct copy_stats stats = { 0 };
	size_t n = 0;
	int src = make_sparse_src(t->fd, "rsrc", pattern, sizeof pattern);
	int dst = openat(t->fd, "rdst", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int dst2 = openat(t->fd, "rdst2", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

	assert_true(dst >= 0 && dst2 >= 0);
	assert_int_equal(fs_data_extents(src, &ext, &n), 0);
	if (n == 1) {
		assert_int_equal(ext[0].off, 0);
		assert_int_equal(ext[0].len, 64 * MiB);
	} else {
		uint64_t total = 0;

		assert_int_equal(n, 3);
		for (size_t i = 0; i < n; i++) {
			total += ext[i].len;
			assert_true(i == 0 ||
				    ext[i].off > ext[i - 1].off + ext[i - 1].len - 1);
		}
		assert_true(total >= 9ULL * MiB && total < 12ULL * MiB);
	}
	cfr_calls = 0;
	assert_int_equal(fs_copy_ranges(src, dst, ext, n, FS_COPY_OFFLOAD_ONLY, &stats), 0);
	assert_true(cfr_calls >= n);
	assert_int_equal(stats.method, COPY_METHOD_SERVER);
	assert_int_equal(stats.extents, n);
	assert_int_equal(stats.bytes_client, 0);
	assert_int_equal(ftruncate(dst, 64 * MiB), 0);
	assert_same_content(src, dst);
	/* Refused: OFFLOAD_ONLY gives up, the default copies itself. */
	cfr_fail_errno = EXDEV;
	stats.method = 77;
	assert_int_equal(fs_copy_ranges(src, dst2, ext, n, FS_COPY_OFFLOAD_ONLY, &stats),
		-EOPNOTSUPP);
	assert_int_equal(stats.method, 77);
	assert_int_equal(fs_copy_ranges(src, dst2, ext, n, 0, &stats), 0);
	cfr_fail_errno = 0;
	assert_int_equal(stats.method, COPY_METHOD_CLIENT);
	assert_int_equal(stats.offload_errno, EXDEV);
	assert_int_equal(stats.bytes_client, stats.bytes_written);
	assert_int_equal(ftruncate(dst2, 64 * MiB), 0);
	assert_same_content(src, dst2);
	/* A range that overflows off_t is refused. */
	{
		struct fs_range bad = { .off = UINT64_MAX - 10, .len = 20 };

		assert_int_equal(fs_copy_ranges(src, dst2, &bad, 1, 0, &stats), -EINVAL);
	}
	free(ext);
	close(src);
	close(dst);
	close(dst2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_copy_clone_refused, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_write_atomic_refuses, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_beneath, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_beneath_fallback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_beneath, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_file_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_copy_edge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_copy_other_fs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sparse_copy_fallback, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
