/* Volumes on a backend of any storage kind (kind.h):
 * <volume_dir>/<prefix>-<uuid>.raw, e.g. smb-<uuid>.raw in a mounted SMB
 * backend's subdir, local-<uuid>.raw in a localfile backend's directory,
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
#include "agent/storage/basecache.h"
#include "agent/storage/kind.h"

#define VOLUME_SIZE_MAX (64ULL << 40) /* 64 TiB */

struct volume_info {
	char path[PATH_MAX + 128];
	uint64_t size_bytes;
	int64_t allocated_bytes; /* -1: the mount cannot tell (FUSE driver) */
	struct copy_stats copy;
	enum basecache_outcome cache; /* shared backends (basecache.h) */
};

/* image may be NULL (then size_bytes is required); size_bytes 0 means the
 * image's size. */
int volumes_create(struct agent *a, const struct storage_kind_ops *k,
	const char *backend_id, const char *volume_id, const char *image,
	uint64_t size_bytes, struct volume_info *ret, struct nq_error *err);
/* [{volume_id, path, size_bytes, allocated_bytes}]; caller owns *ret.
 * allocated_bytes is null on FUSE mounts: libsmbclient does not expose the
 * server's allocation size, so st_blocks there is derived from the size. */
int volumes_list(struct agent *a, const struct storage_kind_ops *k, const char *backend_id,
	json_t **ret, struct nq_error *err);
/* Idempotent. A creation of volume_id in progress is cancelled first
 * (it ends with "cancelled" and removes its temp file). */
int volumes_delete(struct agent *a, const struct storage_kind_ops *k,
	const char *backend_id, const char *volume_id, struct nq_error *err);
/* The path of an existing volume, for a VMM to open. An SMB backend's
 * mount is pinned (mounted again if the share went away) until
 * volumes_unpin; -ENOENT with "volume_missing" when there is no such
 * file. */
int volumes_pin_rootfs(struct agent *a, const struct storage_kind_ops *k,
	const char *backend_id, const char *volume_id, char *ret_path, size_t pathsz,
	struct nq_error *err);
void volumes_unpin(struct agent *a, const struct storage_kind_ops *k,
	const char *backend_id);
/* The name of volume_id's lease file in its volume directory,
 * .<prefix>-<volume_id>.lease (storage/leases.h), built like the volume's
 * own name from the validated id. */
void volumes_lease_name(const struct storage_kind_ops *k, const char *volume_id, char *buf,
	size_t bufsz);
/* [{name, size_bytes, allocated_bytes}] of the image dir; caller owns. */
int images_list(struct agent *a, json_t **ret);
