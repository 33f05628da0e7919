/* nqrust-smbfs file operations: open, read, write, truncate, fsync, close.
 *
 * Each operation is one attempt function run through smbfs_call, so a
 * broken connection is ridden through (retry.c): the attempt reopens the
 * file's SMB handle when the connection it was opened on is gone, and
 * resumes a read or write at the first byte the server has not yet
 * acknowledged. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/ops_internal.h"
#include "smbfs/pool.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

SMBCFILE *
fh_file_locked(struct smbfs *fs, const struct fuse_file_info *fi)
{
	struct smbfs_fh *h = fh_get(fi);

	if (!h) {
		errno = EBADF;
		return NULL;
	}
	if (h->f && h->gen != fs->gen) {
		/* Opened on a connection that broke: the server forgot it. */
		smbc_getFunctionClose(fs->ctx)(fs->ctx, h->f);
		h->f = NULL;
	}
	if (!h->f) {
		h->f = smbc_getFunctionOpen(fs->ctx)(fs->ctx, h->url, h->flags, 0);
		h->gen = fs->gen;
	}
	return h->f;
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
		/* Kept across opens; the kernel still drops them when it sees
		 * the mtime change (FUSE_CAP_AUTO_INVAL_DATA, on by default). */
		fi->keep_cache = 1;
		break;
	case SMBFS_CACHE_STRICT: /* pages dropped at every open */
		break;
	}
}

struct open_args {
	struct smbfs_fh *h;
	int flags;
	mode_t mode;
};

static int
open_attempt(struct smbfs *fs, void *arg)
{
	struct open_args *a = arg;

	a->h->f = smbc_getFunctionOpen(fs->ctx)(fs->ctx, a->h->url,
		smb_open_flags(a->flags), a->mode);
	a->h->gen = fs->gen;
	if (!a->h->f)
		return smb_err();
	if ((a->flags & O_TRUNC) || (a->flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		journal_clear_lost(fs, a->h->url);
	/* An O_TRUNC open is a truncate the replay journal must see. */
	if (a->flags & O_TRUNC) {
		int r = journal_add_truncate(fs, a->h->url, 0);

		if (r < 0) {
			smbc_getFunctionClose(fs->ctx)(fs->ctx, a->h->f);
			a->h->f = NULL;
			return r;
		}
	}
	return 0;
}

static int
do_open(const char *path, int flags, mode_t mode, struct fuse_file_info *fi)
{
	struct smbfs *fs = fs_get();
	struct open_args a = { .flags = flags, .mode = mode };
	int r;

	if (fs->view.ro &&
		((flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC))))
		return -EROFS;
	a.h = calloc(1, sizeof *a.h);
	if (!a.h)
		return -ENOMEM;
	a.h->url = smbfs_url(fs, path);
	if (!a.h->url) {
		r = -errno;
		free(a.h);
		return r;
	}
	a.h->flags = smb_open_flags(flags) & O_ACCMODE;
	a.h->id = smbfs_pool_new_id(fs);
	a.h->last_w = -1;
	a.h->sync = (flags & (O_SYNC | O_DSYNC)) != 0 && (flags & O_ACCMODE) != O_RDONLY &&
		    !fs->nostrictsync;
	r = flags & (O_CREAT | O_TRUNC)
		    ? smbfs_call_update(fs, open_attempt, &a)
		    : smbfs_call(fs, open_attempt, &a);
	if (r < 0) {
		free(a.h->url);
		free(a.h);
		return r;
	}
	fi->fh = (uint64_t)(uintptr_t)a.h;
	set_cache_mode(fs, fi);
	return 0;
}

/* The kernel opens a name it still has in its entry cache (up to
 * entry_timeout) without asking us first, and strips O_CREAT: when another
 * host (or anyone behind the mount) deleted the file meanwhile, the SMB
 * open fails with ENOENT although the caller may have asked to create it.
 * ESTALE makes the VFS walk the path again with LOOKUP_REVAL, which
 * forces our lookup: the name turns out absent, and the open is retried
 * as a create (O_CREAT) or fails with ENOENT (no O_CREAT), as on a local
 * file system. */
int
smbfs_op_open(const char *path, struct fuse_file_info *fi)
{
	int r = do_open(path, fi->flags, 0, fi);

	return r == -ENOENT ? -ESTALE : r;
}

int
smbfs_op_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return do_open(path, fi->flags | O_CREAT, mode & 0777, fi);
}

int
smbfs_read_attempt(struct smbfs *fs, void *arg)
{
	struct io_args *a = arg;
	SMBCFILE *f = fh_file_locked(fs, a->fi);

	if (!f || smbc_getFunctionLseek(fs->ctx)(fs->ctx, f, a->off + (off_t)a->done,
			  SEEK_SET) < 0)
		return smb_err();
	while (a->done < a->size) {
		ssize_t n = smbc_getFunctionRead(fs->ctx)(fs->ctx, f, a->rbuf + a->done,
			a->size - a->done);

		if (n < 0)
			return smb_err();
		if (n == 0)
			break;
		a->done += (size_t)n;
	}
	return 0;
}

int
smbfs_op_read(const char *path, char *buf, size_t size, off_t off,
	struct fuse_file_info *fi)
{
	struct io_args a = { .fi = fi, .rbuf = buf, .size = size, .off = off };
	int r;

	(void)path;
	if (fs_get()->pool)
		return smbfs_pool_read(fs_get(), fi, buf, size, off);
	r = smbfs_call(fs_get(), smbfs_read_attempt, &a);
	if (r < 0 && a.done == 0)
		return r;
	return (int)a.done;
}

int
smbfs_write_attempt(struct smbfs *fs, void *arg)
{
	struct io_args *a = arg;
	struct smbfs_fh *h = fh_get(a->fi);
	SMBCFILE *f = fh_file_locked(fs, a->fi);
	size_t n;
	int r;

	if (!f)
		return smb_err();
	if (smbfs_cutoff_passed(fs->cutoff_ms, smbfs_now_ms()))
		return -EIO; /* io_deadline: never sent again */
	if (h->sync) {
		/* O_SYNC/O_DSYNC: the server acknowledges each write only
		 * once it is on stable storage. */
		r = smbfs_write_through(f, a->wbuf + a->done, a->size - a->done,
			a->off + (off_t)a->done, &n);
		if (r < 0)
			return r;
		a->done += n;
		return n == 0 && a->done < a->size ? -EIO : 0;
	}
	if (smbc_getFunctionLseek(fs->ctx)(fs->ctx, f, a->off + (off_t)a->done, SEEK_SET) <
		0)
		return smb_err();
	while (a->done < a->size) {
		ssize_t w;

		if (smbfs_cutoff_passed(fs->cutoff_ms, smbfs_now_ms()))
			return -EIO;
		w = smbc_getFunctionWrite(fs->ctx)(fs->ctx, f, a->wbuf + a->done,
			a->size - a->done);

		if (w < 0)
			return smb_err();
		if (w == 0)
			return -EIO;
		/* Acknowledged, not yet durable: journal it before we count it,
		 * so a retry rewrites what could not be journaled. */
		r = journal_add_write(fs, h->url, a->wbuf + a->done, (size_t)w,
			a->off + (off_t)a->done);
		if (r < 0)
			return r;
		a->done += (size_t)w;
	}
	return 0;
}

int
smbfs_op_write(const char *path, const char *buf, size_t size, off_t off,
	struct fuse_file_info *fi)
{
	struct io_args a = { .fi = fi, .wbuf = buf, .size = size, .off = off };
	int r;

	(void)path;
	if (fs_get()->view.ro)
		return -EROFS;
	if (fs_get()->pool)
		return smbfs_pool_write(fs_get(), fi, buf, size, off);
	r = smbfs_call_update(fs_get(), smbfs_write_attempt, &a);
	if (r < 0 && a.done == 0)
		return r;
	return (int)a.done;
}

/* Open url O_RDWR, truncate or flush it, close it. */
int
smbfs_path_file_attempt(struct smbfs *fs, void *arg)
{
	struct path_file_args *a = arg;
	SMBCFILE *f = smbc_getFunctionOpen(fs->ctx)(fs->ctx, a->url, O_RDWR, 0);
	int r;

	if (!f)
		return smb_err();
	if (a->flush && journal_take_lost(fs, a->url))
		r = -EIO; /* writes dropped past io_deadline (journal.c) */
	else if (a->flush)
		r = smbfs_flush_file(f);
	else
		r = smbc_getFunctionFtruncate(fs->ctx)(fs->ctx, f, a->size) < 0
			    ? smb_err()
			    : 0;
	smbc_getFunctionClose(fs->ctx)(fs->ctx, f);
	if (r == 0 && a->flush)
		journal_forget(fs, a->url);
	else if (r == 0)
		r = journal_add_truncate(fs, a->url, a->size);
	if (r == 0 && !a->flush)
		journal_mark_dirty(fs, a->url, SMBFS_MAIN_BIT);
	return r;
}

static int
path_file(const char *path, off_t size, bool flush)
{
	struct smbfs *fs = fs_get();
	struct path_file_args a = { .size = size, .flush = flush };
	char *url = smbfs_url(fs, path);
	int r;

	if (!url)
		return -errno;
	a.url = url;
	r = smbfs_call_update(fs, smbfs_path_file_attempt, &a);
	free(url);
	return r;
}

static int
ftruncate_attempt(struct smbfs *fs, void *arg)
{
	struct fh_args *a = arg;
	SMBCFILE *f = fh_file_locked(fs, a->fi);

	if (!f || smbc_getFunctionFtruncate(fs->ctx)(fs->ctx, f, a->size) < 0)
		return smb_err();
	journal_mark_dirty(fs, fh_get(a->fi)->url, SMBFS_MAIN_BIT);
	return journal_add_truncate(fs, fh_get(a->fi)->url, a->size);
}

int
smbfs_op_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct fh_args a = { .fi = fi, .size = size };

	if (fs_get()->view.ro)
		return -EROFS;
	if (size < 0)
		return -EINVAL;
	if (fi && fi->fh)
		return smbfs_call_update(fs_get(), ftruncate_attempt, &a);
	return path_file(path, size, false);
}

int
smbfs_fsync_attempt(struct smbfs *fs, void *arg)
{
	struct fh_args *a = arg;
	SMBCFILE *f;
	int r;

	if (journal_take_lost(fs, fh_get(a->fi)->url))
		return -EIO; /* writes dropped past io_deadline (journal.c) */
	f = fh_file_locked(fs, a->fi);
	r = f ? smbfs_flush_file(f) : smb_err();
	if (r == 0)
		journal_forget(fs, fh_get(a->fi)->url);
	return r;
}

/* fsync and fdatasync: the server flushes the file to stable storage
 * before we answer (SMB2 has no data-only flush; both are full). A
 * read-only handle cannot carry a write, so the flush goes through a
 * short-lived read-write one; without write access there is nothing of
 * ours to flush. */
int
smbfs_op_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct smbfs *fs = fs_get();
	struct smbfs_fh *h = fi ? fh_get(fi) : NULL;
	struct fh_args a = { .fi = fi };
	int r;

	(void)datasync;
	if (fs->view.ro || fs->nostrictsync)
		return 0;
	if (fs->pool) {
		/* 1: no worker changed the file since its last flush, or our
		 * own connection did: flush it here too. */
		r = smbfs_pool_fsync(fs, path, fi);
		if (r <= 0)
			return r;
	}
	if (h && (h->flags & O_ACCMODE) != O_RDONLY)
		return smbfs_call_update(fs, smbfs_fsync_attempt, &a);
	r = path_file(path, 0, true);
	return r == -EACCES || r == -EPERM ? 0 : r;
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
		if (h->gen != fs->gen || smbfs_conn_error(r))
			r = 0; /* the server already let go of it */
		h->f = NULL;
	}
	pthread_mutex_unlock(&fs->lock);
	return r;
}

/* close(2) waits for FLUSH: close the SMB handle now (see struct smbfs_fh)
 * so the server sees the file closed when close returns. */
int
smbfs_op_flush(const char *path, struct fuse_file_info *fi)
{
	struct smbfs_fh *h = fh_get(fi);
	int r;

	(void)path;
	if (!h)
		return 0;
	r = smbfs_pool_close(fs_get(), fi);
	return fh_close(fs_get(), h) ?: r;
}

int
smbfs_op_release(const char *path, struct fuse_file_info *fi)
{
	struct smbfs_fh *h = fh_get(fi);
	int r;

	(void)path;
	if (!h)
		return 0;
	r = smbfs_pool_close(fs_get(), fi);
	r = fh_close(fs_get(), h) ?: r;
	free(h->url);
	free(h);
	fi->fh = 0;
	return r;
}
