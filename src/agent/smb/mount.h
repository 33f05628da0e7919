/* Running the mount drivers, unmounting, probing writability and reading
 * capacity, each under a deadline. The mount table (mounts/) calls them
 * through smb_mount_ops without its lock. */
#pragma once

#include <stdbool.h>

#include "agent/agent.h"
#include "agent/mounts/mounts.h"
#include "agent/smb/driver.h"

/* The mount table's driver (mounts/mounts.h): the functions below. */
extern const struct mount_ops smb_mount_ops;

/* Mount s at mount_point with the agent's driver policy. *kernel_unavailable
 * is read and updated (auto mode remembers that the kernel has no cifs).
 * On success *ret_driver says which driver mounted it. */
int smb_mount_run(struct agent *a, const struct smb_mount_spec *s, const char *cred_path,
	const char *mount_point, bool *kernel_unavailable, enum mount_driver *ret_driver,
	struct nq_error *err);
/* Prove that cred_path's credentials are accepted by the server now,
 * without mounting (nqrust-smbfs --check): used before a backend shares a
 * mount another backend made. Same error codes as a mount. */
int smb_check_credentials(struct agent *a, const struct smb_mount_spec *s,
	const char *cred_path, const char *mount_point, struct nq_error *err);
/* umount, then a lazy umount if that fails; then rmdir the mount point. */
int smb_unmount_run(struct agent *a, const char *mount_point);
/* Create subdir beneath mount_point (no symlinks), then create, write,
 * fsync and delete a probe file in it, all within timeout_ms. */
int smb_probe_writable(const struct smb_mount_spec *s, const char *mount_point,
	const char *subdir, int timeout_ms, struct nq_error *err);
/* statvfs of dir (beneath mount_point), under a deadline keyed by
 * mount_point (deadline.h): -ETIMEDOUT, or -EBUSY / -EAGAIN when an
 * earlier call on the mount is still stuck or the pool is full. */
int smb_capacity(const char *mount_point, const char *dir, int timeout_ms,
	struct capacity *ret);
/* Fill err with smb_timeout for r (-ETIMEDOUT, -EBUSY or -EAGAIN from a
 * deadline call of `what` on the share unc); returns r. */
int smb_timeout_error(const char *unc, const char *what, int r, int timeout_ms,
	struct nq_error *err);
