/* File-system helpers: atomic replace, directories, paths confined beneath
 * a directory fd. The copy that keeps holes is in fsutil_copy.c. */
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"

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
