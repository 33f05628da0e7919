/* nqrust-smbfs FUSE operations; see smbops.h.
 *
 * Every libsmbclient call runs under fs->lock: one SMBCCTX is not
 * thread-safe, and a read or write is an lseek followed by the transfer on
 * a handle whose offset is shared state. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/ops_internal.h"

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

struct getattr_args {
	struct fuse_file_info *fi;
	const char *url;
	struct stat *st;
};

static int
getattr_attempt(struct smbfs *fs, void *arg)
{
	struct getattr_args *a = arg;

	if (a->fi && a->fi->fh) {
		SMBCFILE *f = fh_file_locked(fs, a->fi);

		return !f || smbc_getFunctionFstat(fs->ctx)(fs->ctx, f, a->st) < 0
			       ? smb_err()
			       : 0;
	}
	return smbc_getFunctionStat(fs->ctx)(fs->ctx, a->url, a->st) < 0 ? smb_err() : 0;
}

static int
op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct smbfs *fs = fs_get();
	struct getattr_args a = { .fi = fi, .st = st };
	char *url = NULL;
	int r;

	pthread_once(&readahead_once, readahead_once_fn);
	memset(st, 0, sizeof(*st));
	if (!fi || !fi->fh) {
		url = smbfs_url(fs, path);
		if (!url)
			return -errno;
		a.url = url;
	}
	r = smbfs_call(fs, getattr_attempt, &a);
	free(url);
	if (r == 0)
		present_stat(fs, st);
	return r;
}

struct readdir_args {
	const char *url;
	void *buf;
	fuse_fill_dir_t filler;
};

/* libsmbclient fetches the whole listing in opendir; readdir only walks
 * it in memory. So a failed attempt has handed nothing to the kernel. */
static int
readdir_attempt(struct smbfs *fs, void *arg)
{
	struct readdir_args *a = arg;
	struct smbc_dirent *de;
	SMBCFILE *dir;

	dir = smbc_getFunctionOpendir(fs->ctx)(fs->ctx, a->url);
	if (!dir)
		return smb_err();
	while ((de = smbc_getFunctionReaddir(fs->ctx)(fs->ctx, dir)) != NULL) {
		if (de->smbc_type != SMBC_DIR && de->smbc_type != SMBC_FILE &&
			de->smbc_type != SMBC_LINK)
			continue;
		if (a->filler(a->buf, de->name, NULL, 0, 0))
			break;
	}
	smbc_getFunctionClosedir(fs->ctx)(fs->ctx, dir);
	return 0;
}

static int
op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
	struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct smbfs *fs = fs_get();
	struct readdir_args a = { .buf = buf, .filler = filler };
	char *url;
	int r;

	(void)off;
	(void)fi;
	(void)flags;
	url = smbfs_url(fs, path);
	if (!url)
		return -errno;
	a.url = url;
	r = smbfs_call(fs, readdir_attempt, &a);
	free(url);
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

/* Path-based calls. A call replayed after a broken connection may have
 * reached the server the first time: its "already done" answer (ENOENT
 * for a removal or a rename's source, EEXIST for mkdir) is then success,
 * as the kernel's NFS and cifs clients treat it. */
enum path_op { P_UNLINK, P_RMDIR, P_MKDIR, P_RENAME, P_RENAME_NOREPLACE };

struct path_args {
	enum path_op op;
	const char *url, *to;
	mode_t mode;
	unsigned tries;
};

static int
path_attempt(struct smbfs *fs, void *arg)
{
	struct path_args *a = arg;
	struct stat st;
	int r;

	switch (a->op) {
	case P_UNLINK:
		r = smbc_getFunctionUnlink(fs->ctx)(fs->ctx, a->url);
		break;
	case P_RMDIR:
		r = smbc_getFunctionRmdir(fs->ctx)(fs->ctx, a->url);
		break;
	case P_MKDIR:
		r = smbc_getFunctionMkdir(fs->ctx)(fs->ctx, a->url, a->mode);
		break;
	case P_RENAME_NOREPLACE:
		if (smbc_getFunctionStat(fs->ctx)(fs->ctx, a->to, &st) == 0)
			return a->tries++ ? 0 : -EEXIST;
		/* fall through */
	case P_RENAME:
	default:
		r = smbc_getFunctionRename(fs->ctx)(fs->ctx, a->url, fs->ctx, a->to);
		break;
	}
	r = r < 0 ? smb_err() : 0;
	if (a->tries++ > 0 &&
		((r == -ENOENT && a->op != P_MKDIR) || (r == -EEXIST && a->op == P_MKDIR)))
		r = 0;
	if (r == 0 && a->op == P_UNLINK) {
		journal_forget(fs, a->url);
		journal_drop_dirty(fs, a->url);
	} else if (r == 0 && (a->op == P_RENAME || a->op == P_RENAME_NOREPLACE))
		journal_rename(fs, a->url, a->to);
	return r;
}

static int
path_call(const char *path, const char *to, enum path_op op, mode_t mode)
{
	struct smbfs *fs = fs_get();
	struct path_args a = { .op = op, .mode = mode };
	char *url, *uto = NULL;
	int r;

	if (fs->view.ro)
		return -EROFS;
	url = smbfs_url(fs, path);
	if (!url)
		return -errno;
	if (to && !(uto = smbfs_url(fs, to))) {
		r = -errno;
		free(url);
		return r;
	}
	a.url = url;
	a.to = uto;
	for (int attempt = 0;; attempt++) {
		a.tries = 0;
		r = smbfs_call_update(fs, path_attempt, &a);
		if (!busy_retry(r, attempt))
			break;
	}
	free(url);
	free(uto);
	return r;
}

static int
op_unlink(const char *path)
{
	return path_call(path, NULL, P_UNLINK, 0);
}

static int
op_rmdir(const char *path)
{
	return path_call(path, NULL, P_RMDIR, 0);
}

static int
op_mkdir(const char *path, mode_t mode)
{
	return path_call(path, NULL, P_MKDIR, mode & 0777);
}

static int
op_rename(const char *from, const char *to, unsigned int flags)
{
	if (flags & ~RENAME_NOREPLACE)
		return -EINVAL;
	return path_call(from, to,
		flags & RENAME_NOREPLACE ? P_RENAME_NOREPLACE : P_RENAME, 0);
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
	.open = smbfs_op_open,
	.create = smbfs_op_create,
	.read = smbfs_op_read,
	.write = smbfs_op_write,
	.truncate = smbfs_op_truncate,
	.fsync = smbfs_op_fsync,
	.flush = smbfs_op_flush,
	.release = smbfs_op_release,
	.unlink = op_unlink,
	.mkdir = op_mkdir,
	.rmdir = op_rmdir,
	.rename = op_rename,
	.statfs = smbfs_op_statfs,
	.utimens = smbfs_op_utimens,
	.chmod = smbfs_op_chmod,
	.chown = smbfs_op_chown,
	.copy_file_range = smbfs_op_copy_file_range,
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
	journal_release(fs);
	journal_release_dirty(fs);
	if (fs->ctx) {
		/* shutdown_ctx=1 closes every handle still open. */
		smbc_free_context(fs->ctx, 1);
		fs->ctx = NULL;
	}
	free(fs->base_url);
	fs->base_url = NULL;
	fs->base_len = 0;
}
