/* Helpers shared by the FUSE operation files (smbops.c, meta.c). Not an
 * API: include only from those. */
#pragma once

#include "smbops.h"

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
	SMBCFILE *f;   /* NULL after flush until the next use */
	char *url;     /* owned */
	int flags;     /* reopen flags: access mode only */
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

#define LOCKED(fs, stmt)                                  \
	do {                                              \
		pthread_mutex_lock(&(fs)->lock);          \
		stmt;                                     \
		pthread_mutex_unlock(&(fs)->lock);        \
	} while (0)

/* Metadata operations, in meta.c. */
int smbfs_op_statfs(const char *path, struct statvfs *out);
int smbfs_op_utimens(const char *path, const struct timespec tv[2],
	struct fuse_file_info *fi);
int smbfs_op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi);
int smbfs_op_chown(const char *path, uid_t uid, gid_t gid,
	struct fuse_file_info *fi);
