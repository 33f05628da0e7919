/* File-system helpers: atomic replace, directories, paths confined beneath
 * a directory fd, and a copy that keeps holes. */
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"

#define COPY_BUF_SIZE (1024 * 1024)
/* Largest single copy_file_range request; the kernel caps it anyway. */
#define COPY_CFR_CHUNK (1024 * 1024 * 1024)

/* A single, plain directory entry name. */
static bool
valid_entry_name(const char *name)
{
	size_t len;

	if (!name)
		return false;
	len = strnlen(name, NAME_MAX + 1);
	return len > 0 && len <= NAME_MAX && !strchr(name, '/') &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Relative path checks shared by the *_beneath functions: not empty, not
 * absolute, no ".." component (refused up front so the openat2 path and
 * the fallback walk agree). */
static int
check_relpath(const char *relpath)
{
	const char *c;

	if (!relpath || relpath[0] == '\0' || strnlen(relpath, PATH_MAX) >= PATH_MAX)
		return -EINVAL;
	if (relpath[0] == '/')
		return -EXDEV;
	for (c = relpath;;) {
		const char *e = strchrnul(c, '/');

		if (e - c == 2 && c[0] == '.' && c[1] == '.')
			return -EXDEV;
		if (*e == '\0')
			return 0;
		c = e + 1;
	}
}

static int
write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negerrno();
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int
fs_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode)
{
	char tmp[NAME_MAX + 1];
	_cleanup_close_ int fd = -1;
	int r;

	if (!valid_entry_name(name) || (!data && len > 0))
		return -EINVAL;
	for (int attempt = 0; fd < 0; attempt++) {
		unsigned char rnd[8];
		int n;

		if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
			return errno ? negerrno() : -EIO;
		n = snprintf(tmp, sizeof tmp, ".%s.tmp.%02x%02x%02x%02x%02x%02x%02x%02x",
			name, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6],
			rnd[7]);
		if (n < 0 || (size_t)n >= sizeof tmp)
			return -ENAMETOOLONG;
		fd = openat(dirfd, tmp,
			O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_WRONLY, 0600);
		if (fd < 0 && (errno != EEXIST || attempt >= 16))
			return negerrno();
	}

	/* fchmod is not subject to the umask. */
	if (fchmod(fd, mode & 07777) < 0) {
		r = negerrno();
		goto fail;
	}
	if ((r = write_all(fd, data, len)) < 0)
		goto fail;
	if (fsync(fd) < 0) {
		r = negerrno();
		goto fail;
	}
	if (close(TAKE_FD(fd)) < 0 && errno != EINTR) {
		r = negerrno();
		goto fail;
	}
	if (renameat(dirfd, tmp, dirfd, name) < 0) {
		r = negerrno();
		goto fail;
	}
	if (fsync(dirfd) < 0)
		return negerrno();
	return 0;
fail:
	(void)unlinkat(dirfd, tmp, 0);
	return r;
}

int
fs_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t len;

	if (!path || path[0] != '/')
		return -EINVAL;
	len = strnlen(path, sizeof buf);
	if (len >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (size_t i = 1; i <= len; i++) {
		struct stat st;
		const char *comp;

		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		if (buf[i - 1] == '/') /* "//" or trailing '/' */
			continue;
		buf[i] = '\0';
		comp = strrchr(buf, '/') + 1;
		if (strcmp(comp, "..") == 0) {
			return -EINVAL;
		} else if (strcmp(comp, ".") == 0) {
			; /* nothing to create */
		} else if (mkdir(buf, mode) == 0) {
			/* mkdir applies the umask; the caller asked for mode. */
			if (chmod(buf, mode & 07777) < 0)
				return negerrno();
		} else if (errno != EEXIST) {
			return negerrno();
		} else if (stat(buf, &st) < 0) {
			return negerrno();
		} else if (!S_ISDIR(st.st_mode)) {
			return -ENOTDIR;
		}
		if (i < len)
			buf[i] = '/';
	}
	return 0;
}

/* Walk relpath beneath dirfd one component at a time with O_NOFOLLOW: the
 * fallback where openat2 does not exist. */
static int
open_beneath_walk(int dirfd, const char *relpath, int flags, mode_t mode)
{
	char buf[PATH_MAX];
	_cleanup_close_ int cur = -1;
	char *comp, *next;
	int base = dirfd, fd;

	memcpy(buf, relpath, strlen(relpath) + 1);
	comp = buf;
	for (;;) {
		while (*comp == '/')
			comp++;
		next = strchr(comp, '/');
		if (next)
			*next++ = '\0';
		while (next && *next == '/')
			next++;
		if (next && *next == '\0')
			next = NULL;
		if (!next)
			break;
		if (strcmp(comp, ".") != 0) {
			fd = openat(base, comp,
				O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return negerrno();
			closep(&cur);
			cur = fd;
			base = cur;
		}
		comp = next;
	}
	if (*comp == '\0')
		comp = ".";
	fd = openat(base, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	return fd < 0 ? negerrno() : fd;
}

int
fs_open_beneath(int dirfd, const char *relpath, int flags, mode_t mode)
{
	struct open_how how = { 0 };
	int r, fd;

	if ((r = check_relpath(relpath)) < 0)
		return r;
	how.flags = (unsigned long long)(flags | O_CLOEXEC);
	/* openat2 refuses a mode without O_CREAT/O_TMPFILE. */
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
		how.mode = mode & 07777;
	how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
	fd = (int)syscall(SYS_openat2, dirfd, relpath, &how, sizeof how);
	if (fd >= 0)
		return fd;
	if (errno != ENOSYS)
		return negerrno();
	return open_beneath_walk(dirfd, relpath, flags, mode);
}

int
fs_mkdir_beneath(int dirfd, const char *relpath, mode_t mode)
{
	char buf[PATH_MAX];
	_cleanup_close_ int cur = -1;
	int base = dirfd, r;
	char *comp, *save = NULL;

	if ((r = check_relpath(relpath)) < 0)
		return r;
	memcpy(buf, relpath, strlen(relpath) + 1);
	for (comp = strtok_r(buf, "/", &save); comp; comp = strtok_r(NULL, "/", &save)) {
		int fd;

		if (strcmp(comp, ".") == 0)
			continue;
		if (mkdirat(base, comp, mode) == 0) {
			fd = openat(base, comp,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return negerrno();
			/* Like fs_mkdir_p: the created directory gets mode exactly. */
			if (fchmod(fd, mode & 07777) < 0) {
				r = negerrno();
				close(fd);
				return r;
			}
		} else if (errno == EEXIST) {
			fd = openat(base, comp,
				O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (fd < 0)
				return errno == ELOOP ? -ENOTDIR : negerrno();
		} else {
			return negerrno();
		}
		closep(&cur);
		cur = fd;
		base = cur;
	}
	if (cur < 0) /* relpath was only "." components */
		cur = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return cur < 0 ? negerrno() : TAKE_FD(cur);
}

int
fs_read_file(int dirfd, const char *name, size_t cap, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct stat st;

	if (!ret || cap >= SIZE_MAX - 1)
		return -EINVAL;
	/* O_NONBLOCK: opening a FIFO planted in place of the file must not
	 * block; anything but a regular file is refused below. */
	fd = fs_open_beneath(dirfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY, 0);
	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0)
		return negerrno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if ((uint64_t)st.st_size > cap)
		return -EFBIG;
	/* One spare byte detects a file that grew past cap since fstat. */
	buf = malloc(cap + 2);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap + 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negerrno();
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > cap)
			return -EFBIG;
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return 0;
}

struct copier {
	int src, dst;
	bool use_cfr;
	int cfr_errno; /* why use_cfr was dropped */
	char *buf;     /* COPY_BUF_SIZE, allocated on first fallback */
	uint64_t server, client;
};

const char *
copy_method_name(enum copy_method m)
{
	switch (m) {
	case COPY_METHOD_CLONE:
		return "clone";
	case COPY_METHOD_SERVER:
		return "server_copy";
	case COPY_METHOD_CLIENT:
		return "client_copy";
	}
	return "none";
}

static int
copy_range_rw(struct copier *c, off_t off, off_t end)
{
	if (!c->buf) {
		c->buf = malloc(COPY_BUF_SIZE);
		if (!c->buf)
			return -ENOMEM;
	}
	while (off < end) {
		size_t want = (size_t)(end - off) < COPY_BUF_SIZE
				      ? (size_t)(end - off)
				      : COPY_BUF_SIZE;
		ssize_t n = pread(c->src, c->buf, want, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return negerrno();
		}
		if (n == 0) /* src shrank under us: nothing more to copy */
			return 0;
		for (ssize_t done = 0; done < n;) {
			ssize_t w = pwrite(c->dst, c->buf + done, (size_t)(n - done),
				off + done);

			if (w < 0) {
				if (errno == EINTR)
					continue;
				return negerrno();
			}
			done += w;
		}
		off += n;
		c->client += (uint64_t)n;
	}
	return 0;
}

/* Errors after which another method may still work: the file systems
 * (or the server behind them) do not offer this one for these files. */
static bool
offload_refused(int e)
{
	return e == EXDEV || e == EINVAL || e == EOPNOTSUPP || e == ENOSYS ||
	       e == ENOTTY || e == EPERM || e == EBADF || e == ETXTBSY;
}

static int
copy_range(struct copier *c, off_t off, off_t end)
{
	while (c->use_cfr && off < end) {
		off_t soff = off, doff = off;
		size_t want = (uint64_t)(end - off) < COPY_CFR_CHUNK
				      ? (size_t)(end - off)
				      : COPY_CFR_CHUNK;
		ssize_t n = copy_file_range(c->src, &soff, c->dst, &doff, want, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (offload_refused(errno) && errno != EPERM && errno != EBADF) {
				/* e.g. local file <-> FUSE: never retry. */
				c->cfr_errno = errno;
				c->use_cfr = false;
				break;
			}
			return negerrno();
		}
		if (n == 0)
			return 0;
		off += n;
		c->server += (uint64_t)n;
	}
	return off < end ? copy_range_rw(c, off, end) : 0;
}

/* The next data extent [*ret_data, *ret_hole) at or after off, clipped to
 * size; 1 when found, 0 when only a hole remains. */
static int
next_extent(int fd, off_t off, off_t size, off_t *ret_data, off_t *ret_hole)
{
	off_t data = lseek(fd, off, SEEK_DATA), hole;

	if (data < 0) {
		if (errno == ENXIO) /* only a hole remains */
			return 0;
		if (errno != EINVAL)
			return negerrno();
		/* No SEEK_DATA here: everything is data. */
		data = off;
		hole = size;
	} else {
		hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0) {
			if (errno != EINVAL && errno != ENXIO)
				return negerrno();
			hole = size;
		}
	}
	if (data >= size)
		return 0;
	if (hole > size)
		hole = size;
	if (hole <= data)
		return -EIO;
	*ret_data = data;
	*ret_hole = hole;
	return 1;
}

/* FICLONE of the whole file: 1 when done, 0 when the file systems do not
 * offer it for these files (dst is empty again then). */
static int
try_clone(int src_fd, int dst_fd)
{
	if (ioctl(dst_fd, FICLONE, src_fd) == 0)
		return 1;
	if (errno == EINTR || !offload_refused(errno))
		return negerrno();
	/* A refused clone changes nothing; make sure of it. */
	if (ftruncate(dst_fd, 0) < 0)
		return negerrno();
	return 0;
}

static int
copy_extents(struct copier *c, off_t size, uint64_t *ret_extents)
{
	uint64_t extents = 0;
	off_t off = 0, data, hole;
	int r;

	while (off < size) {
		r = next_extent(c->src, off, size, &data, &hole);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		extents++;
		if ((r = copy_range(c, data, hole)) < 0)
			return r;
		off = hole;
	}
	*ret_extents = extents;
	return 0;
}

int
fs_sparse_copy(int src_fd, int dst_fd, struct copy_stats *ret)
{
	struct copier c = { .src = src_fd, .dst = dst_fd, .use_cfr = true };
	struct copy_stats st = { 0 };
	struct stat sst, dst_st;
	int r;

	if (fstat(src_fd, &sst) < 0 || fstat(dst_fd, &dst_st) < 0)
		return negerrno();
	if (!S_ISREG(sst.st_mode) || !S_ISREG(dst_st.st_mode))
		return -EINVAL;
	if (sst.st_dev == dst_st.st_dev && sst.st_ino == dst_st.st_ino)
		return -EINVAL;
	/* Holes in src must read as zeros in dst: start from an empty file. */
	if (dst_st.st_size != 0 && ftruncate(dst_fd, 0) < 0)
		return negerrno();
	r = try_clone(src_fd, dst_fd);
	if (r < 0)
		return r;
	if (r > 0) {
		st.method = COPY_METHOD_CLONE;
		st.bytes_cloned = (uint64_t)sst.st_size;
	} else {
		r = copy_extents(&c, sst.st_size, &st.extents);
		free(c.buf);
		if (r < 0)
			return r;
		st.bytes_server = c.server;
		st.bytes_client = c.client;
		st.offload_errno = c.cfr_errno;
		st.method = c.client || !c.use_cfr ? COPY_METHOD_CLIENT : COPY_METHOD_SERVER;
	}
	if (ftruncate(dst_fd, sst.st_size) < 0)
		return negerrno();
	st.bytes_written = st.bytes_cloned + st.bytes_server + st.bytes_client;
	if (ret)
		*ret = st;
	return 0;
}

int
fs_opendir(int dirfd, DIR **ret)
{
	int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d;

	if (fd < 0)
		return negerrno();
	d = fdopendir(fd);
	if (!d) {
		int r = negerrno();
		close(fd);
		return r;
	}
	*ret = d;
	return 0;
}
