/* Shared by basecache.c (fill, clone) and basecache_admin.c (the
 * extent-map files, who uses what, list, purge). Not an API. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/fsutil.h"
#include "agent/storage/basecache.h"

#define BC_NAME_MAX 96 /* "<hex>.extents" and the like */

/* "<hex><suffix>" into buf. */
void bc_name(char *buf, size_t bufsz, const char *hex, const char *suffix);

/* The extent map file: "nqrust-extents 1\nsize N\nimage NAME\n" then one
 * "OFF LEN\n" per data extent. */
int bc_extents_write(int cdfd, const char *hex, const char *image, uint64_t size,
	const struct fs_range *ext, size_t n);
/* Parse it; *ret_ext is malloc'ed (caller frees). image (129 bytes, may
 * be NULL) gets the name of the image it was filled from. */
int bc_extents_read(int cdfd, const char *hex, uint64_t *ret_size,
	struct fs_range **ret_ext, size_t *ret_n, char *image);

/* Clones in progress from (backend, hash) on this host. begin returns
 * false when no slot is free (the clone then skips the cache). */
bool bc_use_begin(const char *backend_id, const char *hex);
void bc_use_end(const char *backend_id, const char *hex);
unsigned bc_use_count(const char *backend_id, const char *hex);

/* Backends whose server refused a server-side copy (for an hour): mark
 * logs once. */
bool bc_refused(const char *backend_id);
void bc_mark_refused(const char *backend_id);
/* Forget backend_id's refusal (its cache was purged): try again. */
void bc_forget_refused(const char *backend_id);
