/* fsutil's copies (fsutil.h): FICLONE, then copy_file_range over the
 * data extents (a server-side copy on network file systems), then
 * pread/pwrite; holes stay holes. */
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"

#define COPY_BUF_SIZE (1024 * 1024)
/* Largest single copy_file_range request; the kernel caps it anyway. */
#define COPY_CFR_CHUNK (1024 * 1024 * 1024)

struct copier {
	int src, dst;
	bool use_cfr;
	bool offload_only; /* a refused copy_file_range ends the copy */
	int cfr_errno;     /* why use_cfr was dropped */
	char *buf;         /* COPY_BUF_SIZE, allocated on first fallback */
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
	if (off < end && c->offload_only)
		return -EOPNOTSUPP;
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

int
fs_try_clone(int src_fd, int dst_fd)
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
	r = fs_try_clone(src_fd, dst_fd);
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
fs_data_extents(int fd, struct fs_range **ret, size_t *ret_n)
{
	_cleanup_free_ struct fs_range *v = NULL;
	size_t n = 0, cap = 0;
	off_t off = 0, data, hole;
	struct stat st;
	int r;

	if (fstat(fd, &st) < 0)
		return negerrno();
	while (off < st.st_size) {
		r = next_extent(fd, off, st.st_size, &data, &hole);
		if (r < 0)
			return r;
		if (r == 0)
			break;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct fs_range *nv = reallocarray(v, ncap, sizeof *nv);

			if (!nv)
				return -ENOMEM;
			v = nv;
			cap = ncap;
		}
		v[n++] = (struct fs_range){ .off = (uint64_t)data,
			.len = (uint64_t)(hole - data) };
		off = hole;
	}
	*ret = TAKE_PTR(v);
	*ret_n = n;
	return 0;
}

int
fs_copy_ranges(int src_fd, int dst_fd, const struct fs_range *ranges, size_t n,
	unsigned flags, struct copy_stats *ret)
{
	struct copier c = { .src = src_fd,
		.dst = dst_fd,
		.use_cfr = true,
		.offload_only = (flags & FS_COPY_OFFLOAD_ONLY) != 0 };
	struct copy_stats st = { 0 };
	int r = 0;

	for (size_t i = 0; i < n && r >= 0; i++) {
		if (ranges[i].len == 0)
			continue;
		if (ranges[i].off > (uint64_t)INT64_MAX - ranges[i].len) {
			r = -EINVAL;
			break;
		}
		r = copy_range(&c, (off_t)ranges[i].off,
			(off_t)(ranges[i].off + ranges[i].len));
		st.extents++;
	}
	free(c.buf);
	if (r < 0)
		return r;
	st.bytes_server = c.server;
	st.bytes_client = c.client;
	st.bytes_written = c.server + c.client;
	st.offload_errno = c.cfr_errno;
	st.method = c.client || !c.use_cfr ? COPY_METHOD_CLIENT : COPY_METHOD_SERVER;
	if (ret)
		*ret = st;
	return 0;
}
