/* Volumes on a backend: <volume_dir>/smb-<uuid>.raw on a mounted SMB
 * backend, <dir>/local-<uuid>.raw on a localfile backend (localdirs.h),
 * created from a base image in the image dir (sparse-aware: only data
 * extents are copied) or empty and sparse. Ids are validated; the agent
 * builds every path itself. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/fsutil.h"
#include "agent/agent.h"

#define VOLUME_SIZE_MAX (64ULL << 40) /* 64 TiB */

struct volume_info {
	char path[PATH_MAX + 128];
	uint64_t size_bytes;
	int64_t allocated_bytes; /* -1: the mount cannot tell (FUSE driver) */
	struct copy_stats copy;
};

enum volume_kind { VOLUME_SMB, VOLUME_LOCAL };

/* "smb" / "localfile" (the API's names). */
const char *volume_kind_name(enum volume_kind k);
/* NULL or "" means smb; -EINVAL for anything else. */
int volume_kind_parse(const char *s, enum volume_kind *ret);

/* image may be NULL (then size_bytes is required); size_bytes 0 means the
 * image's size. */
int volumes_create(struct agent *a, enum volume_kind k, const char *backend_id, const char *volume_id,
	const char *image, uint64_t size_bytes, struct volume_info *ret,
	struct nq_error *err);
/* [{volume_id, path, size_bytes, allocated_bytes}]; caller owns *ret.
 * allocated_bytes is null on FUSE mounts: libsmbclient does not expose the
 * server's allocation size, so st_blocks there is derived from the size. */
int volumes_list(struct agent *a, enum volume_kind k, const char *backend_id, json_t **ret,
	struct nq_error *err);
/* Idempotent. A creation of volume_id in progress is cancelled first
 * (it ends with "cancelled" and removes its temp file). */
int volumes_delete(struct agent *a, enum volume_kind k, const char *backend_id, const char *volume_id,
	struct nq_error *err);
/* The path of an existing volume, for a VMM to open. An SMB backend's
 * mount is pinned (mounted again if the share went away) until
 * volumes_unpin; -ENOENT with "volume_missing" when there is no such
 * file. */
int volumes_pin_rootfs(struct agent *a, enum volume_kind k, const char *backend_id,
	const char *volume_id, char *ret_path, size_t pathsz, struct nq_error *err);
void volumes_unpin(struct agent *a, enum volume_kind k, const char *backend_id);
/* True for the errnos a broken SMB connection surfaces as (-errno in r):
 * such a failure during a clone is smb_unreachable, not io_error. */
bool volume_conn_broken(int r);
/* [{name, size_bytes, allocated_bytes}] of the image dir; caller owns. */
int images_list(struct agent *a, json_t **ret);
