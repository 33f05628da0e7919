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

static inline SMBCFILE *
fh_file(const struct fuse_file_info *fi)
{
	return (SMBCFILE *)(uintptr_t)fi->fh;
}

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
