/* Volumes on a mounted SMB backend: <volume_dir>/smb-<uuid>.raw, created
 * from a base image in the image dir (sparse-aware: only data extents are
 * copied) or empty and sparse. Ids are validated UUIDs; the agent builds
 * every path itself. */
#pragma once

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/fsutil.h"
#include "agent.h"

#define VOLUME_SIZE_MAX (64ULL << 40) /* 64 TiB */

struct volume_info {
	char path[PATH_MAX + 128];
	uint64_t size_bytes;
	int64_t allocated_bytes; /* -1: the mount cannot tell (FUSE driver) */
	struct copy_stats copy;
};

/* image may be NULL (then size_bytes is required); size_bytes 0 means the
 * image's size. */
int volumes_create(struct agent *a, const char *backend_id, const char *volume_id,
	const char *image, uint64_t size_bytes, struct volume_info *ret,
	struct nq_error *err);
/* [{volume_id, path, size_bytes, allocated_bytes}]; caller owns *ret.
 * allocated_bytes is null on FUSE mounts: libsmbclient does not expose the
 * server's allocation size, so st_blocks there is derived from the size. */
int volumes_list(struct agent *a, const char *backend_id, json_t **ret,
	struct nq_error *err);
/* Idempotent. */
int volumes_delete(struct agent *a, const char *backend_id, const char *volume_id,
	struct nq_error *err);
/* [{name, size_bytes, allocated_bytes}] of the image dir; caller owns. */
int images_list(struct agent *a, json_t **ret);
