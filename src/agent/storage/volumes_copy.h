/* Copies between the volumes of one backend: a snapshot of a VM's disk, a
 * VM made from a snapshot, a revert. Both files live in the backend's
 * volume directory, so the copy is fs_sparse_copy between two files of
 * one file system (a share): server-side where the share can (reflink,
 * SMB2 COPYCHUNK), holes stay holes. The new content is written to the
 * temp file of the target, flushed, and renamed into place: a crash
 * leaves the old file or the new one, never a mix. */
#pragma once

#include <stdbool.h>

#include "agent/agent.h"
#include "agent/storage/kind.h"
#include "agent/storage/volumes.h"

/* volume_id becomes a copy of source_id. replace false: a new volume
 * (409 volume_exists when it exists); true: an existing one (422
 * volume_missing when it does not). The source is flushed (fsync) first,
 * so writes a VMM left in this host's cache are part of the copy. */
int volumes_copy(struct agent *a, const struct storage_kind_ops *k, const char *backend_id,
	const char *volume_id, const char *source_id, bool replace,
	struct volume_info *ret, struct nq_error *err);
