/* nqrust-smbfs FUSE operations; see smbops.h.
 *
 * Every libsmbclient call runs under fs->lock: one SMBCCTX is not
 * thread-safe, and a read or write is an lseek followed by the transfer on
 * a handle whose offset is shared state. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "ops_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

/* Preferred I/O size we advertise; matches max_read/max_write. */
#define SMBFS_IO_SIZE (1024 * 1024)

/* Make the stat libsmbclient produced look like the mount options say. */
static void
present_stat(const struct smbfs *fs, struct stat *st)
{
	bool dir = S_ISDIR(st->st_mode);
	bool dos_ro = !(st->st_mode & S_IWUSR);
	mode_t perm = dir ? fs->view.dir_mode : fs->view.file_mode;

	if (!dir && dos_ro)
		perm &= (mode_t) ~(S_IWUSR | S_IWGRP | S_IWOTH);
	st->st_mode = (dir ? S_IFDIR : S_IFREG) | (perm & 07777);
	st->st_uid = fs->view.uid;
	st->st_gid = fs->view.gid;
	st->st_nlink = dir ? 2 : 1;
	st->st_blksize = SMBFS_IO_SIZE;
	/* libsmbclient derives st_blocks from the size; see the report in
	 * the README about allocation. Keep its value. */
}

static pthread_once_t readahead_once = PTHREAD_ONCE_INIT;

static void
readahead_once_fn(void)
{
	const struct smbfs *fs = fs_get();

	if (fs->mountpoint)
		smbfs_raise_readahead(fs->mountpoint);
}

static int
op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct smbfs *fs = fs_get();
	char *url;
	int r;

	pthread_once(&readahead_once, readahead_once_fn);
	memset(st, 0, sizeof(*st));
	if (fi && fi->fh) {
		LOCKED(fs, SMBCFILE *f = fh_file_locked(fs, fi);
		       r = !f || smbc_getFunctionFstat(fs->ctx)(fs->ctx, f, st) < 0 ? smb_err() : 0);
	} else {
		url = smbfs_url(fs, path);
		if (!url)
			return -errno;
		LOCKED(fs, r = smbc_getFunctionStat(fs->ctx)(fs->ctx, url, st) < 0 ? smb_err() : 0);
		free(url);
	}
	if (r == 0)
		present_stat(fs, st);
	return r;
}

static int
op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
	struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct smbfs *fs = fs_get();
	struct smbc_dirent *de;
	SMBCFILE *dir;
	char *url;
	int r = 0;

	(void)off;
	(void)fi;
	(void)flags;
	url = smbfs_url(fs, path);
	if (!url)
		return -errno;
	pthread_mutex_lock(&fs->lock);
	dir = smbc_getFunctionOpendir(fs->ctx)(fs->ctx, url);
	if (!dir) {
		r = smb_err();
		goto out;
	}
	while ((de = smbc_getFunctionReaddir(fs->ctx)(fs->ctx, dir)) != NULL) {
		if (de->smbc_type != SMBC_DIR && de->smbc_type != SMBC_FILE &&
		    de->smbc_type != SMBC_LINK)
			continue;
		if (filler(buf, de->name, NULL, 0, 0))
			break;
	}
	smbc_getFunctionClosedir(fs->ctx)(fs->ctx, dir);
out:
	pthread_mutex_unlock(&fs->lock);
	free(url);
	return r;
}

/* Open flags for libsmbclient: write access always as O_RDWR (fstat fails
 * on O_WRONLY handles), no O_APPEND (the kernel passes offsets). */
static int
smb_open_flags(int flags)
{
	int acc = flags & O_ACCMODE;
	int out = (acc == O_RDONLY) ? O_RDONLY : O_RDWR;

	return out | (flags & (O_CREAT | O_EXCL | O_TRUNC));
}

static void
set_cache_mode(const struct smbfs *fs, struct fuse_file_info *fi)
{
	switch (fs->view.cache) {
	case SMBFS_CACHE_NONE:
		fi->direct_io = 1;
		break;
	case SMBFS_CACHE_LOOSE:
		fi->keep_cache = 1;
		break;
	case SMBFS_CACHE_STRICT:
		break;
	}
}

SMBCFILE *
fh_file_locked(struct smbfs *fs, const struct fuse_file_info *fi)
{
	struct smbfs_fh *h = fh_get(fi);

	if (!h) {
		errno = EBADF;
		return NULL;
	}
	if (!h->f)
		h->f = smbc_getFunctionOpen(fs->ctx)(fs->ctx, h->url, h->flags, 0);
	return h->f;
}

static int
do_open(const char *path, int flags, mode_t mode, struct fuse_file_info *fi)
{
	struct smbfs *fs = fs_get();
	struct smbfs_fh *h;
	int r = 0;

	if (fs->view.ro && ((flags & O_ACCMODE) != O_RDONLY ||
			    (flags & (O_CREAT | O_TRUNC))))
		return -EROFS;
	h = calloc(1, sizeof *h);
	if (!h)
		return -ENOMEM;
	h->url = smbfs_url(fs, path);
	if (!h->url) {
		r = -errno;
		free(h);
		return r;
	}
	h->flags = smb_open_flags(flags) & O_ACCMODE;
	LOCKED(fs, h->f = smbc_getFunctionOpen(fs->ctx)(fs->ctx, h->url,
			   smb_open_flags(flags), mode);
	       r = h->f ? 0 : smb_err());
	if (r < 0) {
		free(h->url);
		free(h);
		return r;
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	set_cache_mode(fs, fi);
	return 0;
}

static int
op_open(const char *path, struct fuse_file_info *fi)
{
	return do_open(path, fi->flags, 0, fi);
}

static int
op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return do_open(path, fi->flags | O_CREAT, mode & 0777, fi);
}

static int
op_read(const char *path, char *buf, size_t size, off_t off,
	struct fuse_file_info *fi)
{
	struct smbfs *fs = fs_get();
	SMBCFILE *f;
	size_t done = 0;
	int r = 0;

	(void)path;
	pthread_mutex_lock(&fs->lock);
	f = fh_file_locked(fs, fi);
	if (!f || smbc_getFunctionLseek(fs->ctx)(fs->ctx, f, off, SEEK_SET) < 0) {
		r = smb_err();
		goto out;
	}
	while (done < size) {
		ssize_t n = smbc_getFunctionRead(fs->ctx)(fs->ctx, f,
			buf + done, size - done);

		if (n < 0) {
			r = smb_err();
			break;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
out:
	pthread_mutex_unlock(&fs->lock);
	if (r < 0 && done == 0)
		return r;
	return (int)done;
}

static int
op_write(const char *path, const char *buf, size_t size, off_t off,
	struct fuse_file_info *fi)
{
	struct smbfs *fs = fs_get();
	SMBCFILE *f;
	size_t done = 0;
	int r = 0;

	(void)path;
	if (fs->view.ro)
		return -EROFS;
	pthread_mutex_lock(&fs->lock);
	f = fh_file_locked(fs, fi);
	if (!f || smbc_getFunctionLseek(fs->ctx)(fs->ctx, f, off, SEEK_SET) < 0) {
		r = smb_err();
		goto out;
	}
	while (done < size) {
		ssize_t n = smbc_getFunctionWrite(fs->ctx)(fs->ctx, f,
			buf + done, size - done);

		if (n < 0) {
			r = smb_err();
			break;
		}
		if (n == 0) {
			r = -EIO;
			break;
		}
		done += (size_t)n;
	}
out:
	pthread_mutex_unlock(&fs->lock);
	if (r < 0 && done == 0)
		return r;
	return (int)done;
}

static int
op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct smbfs *fs = fs_get();
	SMBCFILE *f;
	char *url;
	int r = 0;

	if (fs->view.ro)
		return -EROFS;
	if (size < 0)
		return -EINVAL;
	if (fi && fi->fh) {
		LOCKED(fs, SMBCFILE *h = fh_file_locked(fs, fi);
		       r = !h || smbc_getFunctionFtruncate(fs->ctx)(fs->ctx, h, size) < 0
			       ? smb_err() : 0);
		return r;
	}
	url = smbfs_url(fs, path);
	if (!url)
		return -errno;
	pthread_mutex_lock(&fs->lock);
	f = smbc_getFunctionOpen(fs->ctx)(fs->ctx, url, O_RDWR, 0);
	if (!f) {
		r = smb_err();
	} else {
		if (smbc_getFunctionFtruncate(fs->ctx)(fs->ctx, f, size) < 0)
			r = smb_err();
		smbc_getFunctionClose(fs->ctx)(fs->ctx, f);
	}
	pthread_mutex_unlock(&fs->lock);
	free(url);
	return r;
}

/* libsmbclient has no flush/fsync call: every write above is synchronous
 * (it returned only after the server acknowledged it), so there is nothing
 * left in this process to push. Durability beyond that is the server's. */
static int
op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	(void)path;
	(void)datasync;
	(void)fi;
	return 0;
}

/* Close h's SMB handle if it is open. Several FLUSHes can race (a spawned
 * child's exec closes its copy of the descriptor while the owner closes
 * its own), so the test is made under the lock. */
static int
fh_close(struct smbfs *fs, struct smbfs_fh *h)
{
	int r = 0;

	pthread_mutex_lock(&fs->lock);
	if (h->f) {
		r = smbc_getFunctionClose(fs->ctx)(fs->ctx, h->f) < 0 ? smb_err() : 0;
		h->f = NULL;
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

/* close(2) waits for FLUSH: close the SMB handle now (see struct smbfs_fh)
 * so the server sees the file closed when close returns. */
static int
op_flush(const char *path, struct fuse_file_info *fi)
{
	struct smbfs_fh *h = fh_get(fi);

	(void)path;
	return h ? fh_close(fs_get(), h) : 0;
}

static int
op_release(const char *path, struct fuse_file_info *fi)
{
	struct smbfs_fh *h = fh_get(fi);
	int r;

	(void)path;
	if (!h)
		return 0;
	r = fh_close(fs_get(), h);
	free(h->url);
	free(h);
	fi->fh = 0;
	return r;
}

/* The kernel sends RELEASE asynchronously: an unlink or rename right
 * after close() can reach the server while our handle is still open, and
 * Samba refuses it with a sharing violation (EBUSY). Flush closes our
 * handle synchronously (struct smbfs_fh), so this only covers other
 * openers: retry for up to ~2 s with the lock dropped. */
#define BUSY_RETRIES 100
#define BUSY_SLEEP_US 20000

static bool
busy_retry(int r, int attempt)
{
	if (r != -EBUSY || attempt >= BUSY_RETRIES)
		return false;
	usleep(BUSY_SLEEP_US);
	return true;
}

/* Run one path-based libsmbclient call under the lock. */
enum path_op { P_UNLINK, P_RMDIR, P_MKDIR };

static int
path_call(const char *path, enum path_op op, mode_t mode)
{
	struct smbfs *fs = fs_get();
	char *url;
	int r;

	if (fs->view.ro)
		return -EROFS;
	url = smbfs_url(fs, path);
	if (!url)
		return -errno;
	for (int attempt = 0;; attempt++) {
		pthread_mutex_lock(&fs->lock);
		switch (op) {
		case P_UNLINK:
			r = smbc_getFunctionUnlink(fs->ctx)(fs->ctx, url);
			break;
		case P_RMDIR:
			r = smbc_getFunctionRmdir(fs->ctx)(fs->ctx, url);
			break;
		case P_MKDIR:
		default:
			r = smbc_getFunctionMkdir(fs->ctx)(fs->ctx, url, mode);
			break;
		}
		r = r < 0 ? smb_err() : 0;
		pthread_mutex_unlock(&fs->lock);
		if (!busy_retry(r, attempt))
			break;
	}
	free(url);
	return r;
}

static int
op_unlink(const char *path)
{
	return path_call(path, P_UNLINK, 0);
}

static int
op_rmdir(const char *path)
{
	return path_call(path, P_RMDIR, 0);
}

static int
op_mkdir(const char *path, mode_t mode)
{
	return path_call(path, P_MKDIR, mode & 0777);
}

static int
op_rename(const char *from, const char *to, unsigned int flags)
{
	struct smbfs *fs = fs_get();
	char *ufrom = NULL, *uto = NULL;
	struct stat st;
	int r = 0;

	if (fs->view.ro)
		return -EROFS;
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	ufrom = smbfs_url(fs, from);
	uto = ufrom ? smbfs_url(fs, to) : NULL;
	if (!uto) {
		r = -errno;
		goto out;
	}
	for (int attempt = 0;; attempt++) {
		r = 0;
		pthread_mutex_lock(&fs->lock);
		if ((flags & RENAME_NOREPLACE) &&
		    smbc_getFunctionStat(fs->ctx)(fs->ctx, uto, &st) == 0)
			r = -EEXIST;
		else if (smbc_getFunctionRename(fs->ctx)(fs->ctx, ufrom,
				 fs->ctx, uto) < 0)
			r = smb_err();
		pthread_mutex_unlock(&fs->lock);
		if (!busy_retry(r, attempt))
			break;
	}
out:
	free(ufrom);
	free(uto);
	return r;
}

static void *
op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct smbfs *fs = fs_get();

	/* Big requests: libfuse 3.14 negotiates max_pages from max_write. */
	if (conn->max_write < SMBFS_IO_SIZE || conn->max_write > SMBFS_IO_SIZE)
		conn->max_write = SMBFS_IO_SIZE;
	/* max_read is left alone: libfuse rejects INIT (EPROTO) when it
	 * differs from the max_read= mount option, and unset it is
	 * unlimited (bounded by max_pages). */
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* Unlink is immediate: no .fuse_hidden files left on the share. */
	cfg->hard_remove = 1;
	cfg->use_ino = 0;
	cfg->nullpath_ok = 0;
	cfg->kernel_cache = fs->view.cache == SMBFS_CACHE_LOOSE;
	cfg->direct_io = fs->view.cache == SMBFS_CACHE_NONE;
	return fs;
}

static const struct fuse_operations smbfs_ops = {
	.init = op_init,
	.getattr = op_getattr,
	.readdir = op_readdir,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.truncate = op_truncate,
	.fsync = op_fsync,
	.flush = op_flush,
	.release = op_release,
	.unlink = op_unlink,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.statfs = smbfs_op_statfs,
	.utimens = smbfs_op_utimens,
	.chmod = smbfs_op_chmod,
	.chown = smbfs_op_chown,
};

const struct fuse_operations *
smbfs_operations(void)
{
	return &smbfs_ops;
}

int
smbfs_probe(struct smbfs *fs)
{
	struct stat st;
	SMBCFILE *dir;
	char *url;
	int r = 0;

	url = smbfs_url(fs, "/");
	if (!url)
		return -errno;
	pthread_mutex_lock(&fs->lock);
	dir = smbc_getFunctionOpendir(fs->ctx)(fs->ctx, url);
	if (!dir) {
		r = smb_err();
	} else {
		smbc_getFunctionClosedir(fs->ctx)(fs->ctx, dir);
		if (smbc_getFunctionStat(fs->ctx)(fs->ctx, url, &st) < 0)
			r = smb_err();
		else if (!S_ISDIR(st.st_mode))
			r = -ENOTDIR;
	}
	pthread_mutex_unlock(&fs->lock);
	free(url);
	return r;
}

int
smbfs_probe_server(struct smbfs *fs)
{
	const char *slash = strchr(fs->base_url + 6, '/');
	SMBCFILE *dir;
	char *url;
	int r = 0;

	if (!slash)
		return -EINVAL;
	url = strndup(fs->base_url, (size_t)(slash - fs->base_url) + 1);
	if (!url)
		return -ENOMEM;
	pthread_mutex_lock(&fs->lock);
	dir = smbc_getFunctionOpendir(fs->ctx)(fs->ctx, url);
	if (!dir)
		r = smb_err();
	else
		smbc_getFunctionClosedir(fs->ctx)(fs->ctx, dir);
	pthread_mutex_unlock(&fs->lock);
	free(url);
	return r;
}

void
smbfs_release(struct smbfs *fs)
{
	if (!fs)
		return;
	if (fs->ctx) {
		/* shutdown_ctx=1 closes every handle still open. */
		smbc_free_context(fs->ctx, 1);
		fs->ctx = NULL;
	}
	free(fs->base_url);
	fs->base_url = NULL;
	fs->base_len = 0;
}
