/* Helpers shared by the FUSE operation files (smbops.c, meta.c). Not an
 * API: include only from those. */
#pragma once

#include "smbfs/smbops.h"

#include <errno.h>
#include <stdint.h>

static inline struct smbfs *
fs_get(void)
{
	return fuse_get_context()->private_data;
}

/* What fi->fh points to. The SMB handle is closed when the application
 * closes the file (FLUSH is synchronous with close(2); RELEASE is not), so
 * the server never sees our handle after close returns: an unlink or
 * rename right after close would otherwise meet a sharing violation for as
 * long as the kernel delays RELEASE. Further I/O through the same open
 * file (a dup'd descriptor) reopens lazily. */
struct smbfs_fh {
	SMBCFILE *f;  /* NULL after flush until the next use */
	char *url;    /* owned */
	int flags;    /* reopen flags: access mode only */
	unsigned gen; /* fs->gen when f was opened */
	bool sync;    /* opened O_SYNC/O_DSYNC: every write is write-through */
	/* With a pool (pool.h): the id workers know this open file by, the
	 * workers that opened it (bit i) and the last one that served it
	 * (reused while idle: its handle is open). */
	uint64_t id;
	uint32_t wmask;
	int last_w;
};

static inline struct smbfs_fh *
fh_get(const struct fuse_file_info *fi)
{
	return (struct smbfs_fh *)(uintptr_t)fi->fh;
}

/* The open SMB handle of fi, reopened if flush closed it. Call with
 * fs->lock held; NULL with errno set on failure. */
SMBCFILE *fh_file_locked(struct smbfs *fs, const struct fuse_file_info *fi);

/* errno after a failed libsmbclient call, as a negative value (never 0). */
static inline int
smb_err(void)
{
	return errno > 0 ? -errno : -EIO;
}

/* One attempt of an operation, called with fs->lock held; >= 0 or -errno.
 * It must be safe to run again after a failure (retry.c). */
typedef int (*smbfs_attempt_fn)(struct smbfs *fs, void *arg);

/* Run fn until it succeeds, fails for a reason other than a broken
 * connection, or the mount's grace runs out (soft: -EIO). Takes and drops
 * fs->lock around each attempt; sleeps without it. */
int smbfs_call(struct smbfs *fs, smbfs_attempt_fn fn, void *arg);

/* smbfs_call for a request that changes the share (write, truncate,
 * fsync, create, remove, rename, set times): with io_deadline= it gets a
 * send cutoff at arrival (deadline.c) and fails with EIO, never sent
 * again, once the cutoff has passed. */
int smbfs_call_update(struct smbfs *fs, smbfs_attempt_fn fn, void *arg);

/* smbfs_call with a send cutoff fixed by the caller (0 = none): a worker
 * serving a request that arrived in the main process. */
int smbfs_call_cutoff(struct smbfs *fs, smbfs_attempt_fn fn, void *arg, int64_t cutoff);

/* Whether the request being served was interrupted by the kernel. */
bool smbfs_interrupted(const struct smbfs *fs);

/* Late-write fencing (deadline.c). A request that arrives at a ms
 * (monotonic) may start a send until its cutoff = a + W - U, where W is
 * io_deadline= and U = W/4 the TCP_USER_TIMEOUT of our sockets: the
 * kernel discards what is still unacknowledged U after the send, so no
 * byte of the request exists anywhere on our side after a + W. */
int64_t smbfs_now_ms(void);
unsigned smbfs_user_timeout_ms(unsigned deadline_s);
int64_t smbfs_send_cutoff_ms(int64_t arrival_ms, unsigned deadline_s);
bool smbfs_cutoff_passed(int64_t cutoff_ms, int64_t now_ms);
/* Set TCP_USER_TIMEOUT = user_timeout_ms and keepalive on every TCP socket
 * of this process whose peer port is port; with sever_new, first shut
 * down those that did not have it yet (a connection made for a request
 * already past its cutoff must not carry it). Number of sockets set, or
 * -errno when /proc/self/fd cannot be read. */
int smbfs_guard_sockets(unsigned port, unsigned user_timeout_ms, bool sever_new);

/* A connected TCP socket whose peer's port is port (deadline.c). */
bool smbfs_is_server_socket(int fd, unsigned port);

/* Whether -errno r means the connection to the server broke. */
bool smbfs_conn_error(int r);

/* Durable writes (durable.c); call with fs->lock held. Write size bytes at
 * off with SMB2_WRITEFLAG_WRITE_THROUGH; flush = a zero-length such write,
 * which the server answers after the file is on stable storage. */
int smbfs_write_through(SMBCFILE *f, const void *buf, size_t size, off_t off,
	size_t *ret_written);
int smbfs_flush_file(SMBCFILE *f);

/* The replay journal (journal.c); all with fs->lock held. add_* record an
 * acknowledged write or truncate (flushing the journal's files first when
 * it is full); forget drops a file's entries after it was flushed or
 * removed; replay sends everything again after a reconnect (a no-op while
 * the connection is the one the entries were written on). */
int journal_add_write(struct smbfs *fs, const char *url, const void *buf, size_t len,
	off_t off);
int journal_add_truncate(struct smbfs *fs, const char *url, off_t size);
void journal_forget(struct smbfs *fs, const char *url);
/* url's old content is gone (truncated to 0, created afresh): a loss
 * recorded for it is no longer reported. */
void journal_clear_lost(struct smbfs *fs, const char *url);
void journal_rename(struct smbfs *fs, const char *from, const char *to);
int journal_replay(struct smbfs *fs);
void journal_release(struct smbfs *fs);
/* Drop the entries whose send cutoff passed by now_ms, marking their files
 * lost; journal_take_lost says (once) whether url lost data that way: its
 * fsync then fails with EIO. */
void journal_expire(struct smbfs *fs, int64_t now_ms);
bool journal_take_lost(struct smbfs *fs, const char *url);

/* Per-file sets of connections with unflushed changes (dirty.c), under
 * fs->lock; no-ops without a pool. take returns the set and empties it. */
void journal_mark_dirty(struct smbfs *fs, const char *url, uint32_t mask);
uint32_t journal_take_dirty(struct smbfs *fs, const char *url);
void journal_drop_dirty(struct smbfs *fs, const char *url);
void journal_rename_dirty(struct smbfs *fs, const char *from, const char *to);
void journal_release_dirty(struct smbfs *fs);
/* Drop url's entries added up to seq (a flush sent after they were
 * acknowledged covered them; later ones stay). */
void journal_forget_upto(struct smbfs *fs, const char *url, uint64_t seq);
/* A copy of the URL of the journal's oldest entry, or NULL. */
char *journal_oldest_url(struct smbfs *fs);

/* Attempts shared with the pool's workers (worker.c). */
struct io_args {
	struct fuse_file_info *fi;
	char *rbuf;
	const char *wbuf;
	size_t size;
	off_t off;
	size_t done; /* acknowledged bytes */
};
struct fh_args {
	struct fuse_file_info *fi;
	off_t size;
};
struct path_file_args {
	const char *url;
	off_t size;
	bool flush; /* flush instead of truncate */
};
int smbfs_read_attempt(struct smbfs *fs, void *arg);
int smbfs_write_attempt(struct smbfs *fs, void *arg);
int smbfs_fsync_attempt(struct smbfs *fs, void *arg);
int smbfs_path_file_attempt(struct smbfs *fs, void *arg);

/* File operations, in fileops.c. */
int smbfs_op_open(const char *path, struct fuse_file_info *fi);
int smbfs_op_create(const char *path, mode_t mode, struct fuse_file_info *fi);
int smbfs_op_read(const char *path, char *buf, size_t size, off_t off,
	struct fuse_file_info *fi);
int smbfs_op_write(const char *path, const char *buf, size_t size, off_t off,
	struct fuse_file_info *fi);
int smbfs_op_truncate(const char *path, off_t size, struct fuse_file_info *fi);
int smbfs_op_fsync(const char *path, int datasync, struct fuse_file_info *fi);
int smbfs_op_flush(const char *path, struct fuse_file_info *fi);
int smbfs_op_release(const char *path, struct fuse_file_info *fi);

/* Server-side copy between two files of this mount, in copy.c. */
ssize_t smbfs_op_copy_file_range(const char *path_in, struct fuse_file_info *fi_in,
	off_t off_in, const char *path_out, struct fuse_file_info *fi_out, off_t off_out,
	size_t size, int flags);

/* Metadata operations, in meta.c. */
int smbfs_op_statfs(const char *path, struct statvfs *out);
int smbfs_op_utimens(const char *path, const struct timespec tv[2],
	struct fuse_file_info *fi);
int smbfs_op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi);
int smbfs_op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi);
