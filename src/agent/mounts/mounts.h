/* The agent's mount table: one mount per identity (server, share, user,
 * domain, version, options, mount base), shared by every backend that asks
 * for it and reference-counted by backend id. Concurrent requests for one
 * identity wait for a single mount attempt. Backend records are persisted
 * under <state_dir>/backends so the table can be rebuilt from
 * /proc/self/mountinfo when the agent restarts. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdint.h>

#include "agent/agent.h"
#include "agent/smb/driver.h"

struct mount_result {
	char mount_point[PATH_MAX];
	char volume_dir[PATH_MAX];
	enum mount_driver driver;
};

/* What the health watchdog last saw of a mount: ok; hung (a bounded
 * probe timed out, or an earlier one is still stuck); dead (the FUSE
 * bridge is gone); repairing (detached, mounting again); error (the
 * server answered the probe with an error). */
enum mount_health { MH_OK, MH_HUNG, MH_DEAD, MH_REPAIRING, MH_ERROR };

/* One capacity for every kind: total_bytes; free_bytes = what we may
 * still write (statvfs f_bavail × f_frsize; an SMB server's "caller
 * available"), reported also as available_bytes; used_bytes = total -
 * free (space reserved for root or held back by a quota counts as used:
 * we cannot write it). */
struct capacity {
	uint64_t total_bytes, used_bytes, free_bytes;
	char health[16]; /* "" when the kind has no mount */
	char health_message[256];
};

/* What the mount table asks of the driver of its mounts: smb_mount_ops
 * (smb/mount.h) in the agent, a fake in the unit tests. The table calls
 * each without its lock held, the mount point's entry MOUNTING or
 * UNMOUNTING meanwhile. */
struct mount_ops {
	/* Mount s at mount_point (created, empty); cred_path NULL for a
	 * guest. *kernel_unavailable is read and updated (the table keeps
	 * it); *ret_driver says which driver mounted it. -errno with err. */
	int (*mount)(struct agent *a, const struct smb_mount_spec *s,
		const char *cred_path, const char *mount_point, bool *kernel_unavailable,
		enum mount_driver *ret_driver, struct nq_error *err);
	/* Unmount (lazily if need be) and remove the mount point. */
	int (*unmount)(struct agent *a, const char *mount_point);
	/* Prove that cred_path's credentials are accepted by the server
	 * now: before a backend shares a live mount another backend made. */
	int (*check_credentials)(struct agent *a, const struct smb_mount_spec *s,
		const char *cred_path, const char *mount_point, struct nq_error *err);
	/* Create subdir beneath mount_point and prove it writable. */
	int (*probe_writable)(const struct smb_mount_spec *s, const char *mount_point,
		const char *subdir, int timeout_ms, struct nq_error *err);
	/* 1 when mount_point still shows the mount of source, 0 when it is
	 * gone, -errno when that cannot be told (taken as still mounted). */
	int (*is_mounted)(const char *mount_point, const char *source);
};

/* A table whose mounts are made through ops (borrowed; static). */
int mount_table_new(const struct mount_ops *ops, struct mount_table **ret);
void mount_table_free(struct mount_table *t);
/* Load backend records and adopt the mounts that are still there. */
int mounts_restore(struct agent *a);
/* Mount (or reuse), create the subdir, probe writability, and reference
 * the mount from this backend. */
int mounts_attach(struct agent *a, const struct smb_backend *req, struct mount_result *ret,
	struct nq_error *err);
/* Drop the backend's reference and record; unmount at zero. Unknown ids
 * are not an error (idempotent). */
int mounts_detach(struct agent *a, const char *backend_id, struct nq_error *err);
/* The backend's volume dir, mounting again if the share went away (after a
 * host restart, say). -ENOENT with err "not_found" for unknown backends.
 * The mount is pinned until mounts_unpin. */
int mounts_pin_volume_dir(struct agent *a, const char *backend_id, char *buf, size_t bufsz,
	enum mount_driver *ret_driver, struct nq_error *err);
void mounts_unpin(struct agent *a, const char *backend_id);
int mounts_capacity(struct agent *a, const char *backend_id, struct capacity *ret,
	struct nq_error *err);
const char *mount_health_name(enum mount_health h);
/* [{mount_point, source, driver, backends:[ids], health, health_message}];
 * caller owns. */
json_t *mounts_list_json(struct agent *a);
/* Copy of the mount spec of a known backend (release with
 * smb_mount_spec_release) and a directory for a credentials check (its
 * mount point, or its mount base); -ENOENT for an unknown backend. */
int mounts_backend_spec(struct agent *a, const char *backend_id,
	struct smb_mount_spec *ret, char *ret_dir, size_t dirsz);
/* The health watchdog: every cfg.mount_check_interval seconds each mount
 * gets a bounded statvfs (one in flight per mount, deadline.h) and, for
 * FUSE mounts, a look for its bridge process. A dead mount is repaired
 * (mounts_repair); a hung one is reported. No thread when the interval is
 * 0. */
int mounts_watch_start(struct agent *a);
void mounts_watch_stop(struct agent *a);
/* Ask the watchdog to stop without waiting for it (mounts_watch_stop
 * joins it). */
void mounts_watch_request_stop(struct agent *a);
/* One watchdog round, now (also used by the watcher thread). */
void mounts_check_all(struct agent *a);
/* Repair the dead mount at mount_point: detach it lazily, end the VMs
 * whose disks were on it (vms_storage_lost), mount it again in place with
 * the same spec and credentials. 0 when repaired or nothing to do. */
int mounts_repair(struct agent *a, const char *mount_point);
/* True when the backend's recorded mount was dead or gone at restore, so
 * the VMs found running on it lost their disks (read by vms_restore). */
bool mounts_backend_lost(struct agent *a, const char *backend_id);
const char *mount_driver_name(enum mount_driver d);
