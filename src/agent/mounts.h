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

#include "agent.h"
#include "smb_driver.h"

struct mount_request {
	char backend_id[NQ_UUID_LEN + 1];
	struct smb_mount_spec spec; /* borrowed */
	char subdir[NQ_SUBDIR_MAX + 1];
	char mount_base[PATH_MAX];
};

struct mount_result {
	char mount_point[PATH_MAX];
	char volume_dir[PATH_MAX];
	enum mount_driver driver;
};

struct capacity {
	uint64_t total_bytes, used_bytes, free_bytes;
};

int mount_table_new(struct mount_table **ret);
void mount_table_free(struct mount_table *t);
/* Load backend records and adopt the mounts that are still there. */
int mounts_restore(struct agent *a);
/* Mount (or reuse), create the subdir, probe writability, and reference
 * the mount from this backend. */
int mounts_attach(struct agent *a, const struct mount_request *req,
	struct mount_result *ret, struct nq_error *err);
/* Drop the backend's reference and record; unmount at zero. Unknown ids
 * are not an error (idempotent). */
int mounts_detach(struct agent *a, const char *backend_id, struct nq_error *err);
/* The backend's volume dir, mounting again if the share went away (after a
 * host restart, say). -ENOENT with err "not_found" for unknown backends.
 * The mount is pinned until mounts_unpin. */
int mounts_pin_volume_dir(struct agent *a, const char *backend_id,
	char *buf, size_t bufsz, enum mount_driver *ret_driver, struct nq_error *err);
void mounts_unpin(struct agent *a, const char *backend_id);
int mounts_capacity(struct agent *a, const char *backend_id,
	struct capacity *ret, struct nq_error *err);
/* [{mount_point, source, driver, backends:[ids]}]; caller owns. */
json_t *mounts_list_json(struct agent *a);
/* Unmount everything (used by tests' teardown and on request only). */
/* Copy of the mount spec of a known backend (release with
 * smb_mount_spec_release) and a directory for a credentials check (its
 * mount point, or its mount base); -ENOENT for an unknown backend. */
int mounts_backend_spec(struct agent *a, const char *backend_id,
	struct smb_mount_spec *ret, char *ret_dir, size_t dirsz);
const char *mount_driver_name(enum mount_driver d);
