/* Shared by storage/volumes.c and storage/volumes_copy.c only. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/nq_error.h"
#include "agent/storage/kind.h"
#include "agent/storage/volumes.h"

/* "<prefix>-<id>.raw", or with tmp ".<prefix>-<id>.raw.tmp". */
void volumes_file_name(const struct storage_kind_ops *k, const char *volume_id, char *buf,
	size_t bufsz, bool tmp);
/* r (-errno) while doing `what` as the contract's error: no_space, the
 * kind's not-writable code, its own codes, else io_error. Returns r. */
int volumes_io_error(const struct storage_kind_ops *k, struct nq_error *err, int r,
	const char *what);
/* End of a fill of the temp file *fd: when r >= 0 size it to at least
 * size, fsync, close (*fd becomes -1) and rename tmp over name (atomic: a
 * crash leaves the old file or the new one), then fill path and sizes of
 * *info (dir/name) and copy it to *ret; on any failure (r < 0 included)
 * close and remove tmp. Returns r or the new failure. */
int volumes_settle(const struct storage_kind_ops *k, int dfd, int *fd, const char *tmp,
	const char *name, const char *dir, uint64_t size, int r, struct volume_info *info,
	struct volume_info *ret, struct nq_error *err);
