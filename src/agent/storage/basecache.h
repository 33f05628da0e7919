/* The base cache of an SMB backend: copies of base images on the share,
 * <volume dir>/.nqrust-cache/<sha256>.raw with their data-extent map
 * <sha256>.extents beside them (imagehash.h names the hash). The first
 * volume made from an image on a backend copies the image sparsely into
 * the cache (through this host, once: a fill marker <sha256>.filling,
 * created O_EXCL, makes every other create, on any host, wait for it);
 * every volume is then cloned from the cache by the server (FICLONE,
 * copy_file_range over the extents: SMB2 DUPLICATE_EXTENTS / COPYCHUNK,
 * smbc_splice in nqrust-smbfs), so no image data crosses the wire again.
 * Where the server refuses the server-side copy, the volume is copied
 * from the image as before, and the backend is remembered (logged once)
 * so later creates skip the cache.
 *
 * The directory starts with '.', and none of its names is a volume's,
 * a lease's or a volume temp file's: volume listings, the in-use check,
 * lease code and the temp-file sweep never see it. */
#pragma once

#include <jansson.h>
#include <sys/stat.h>

#include "common/fsutil.h"
#include "agent/agent.h"
#include "agent/storage/imagehash.h"

#define BASECACHE_DIR ".nqrust-cache"

enum basecache_outcome {
	BASECACHE_OFF = 0, /* not used: copy from the image */
	BASECACHE_HIT,     /* cloned from an entry that was there */
	BASECACHE_FILLED,  /* filled the entry, then cloned from it */
	BASECACHE_REFUSED, /* the server refused the clone: copy from the image */
	BASECACHE_SKIPPED, /* no room on the share for an entry beside the volume */
	BASECACHE_FAILED,  /* the share stopped answering: the create fails */
};
const char *basecache_outcome_name(enum basecache_outcome o);

/* Clone image (open as img, stat *ist) into dst (an empty file in the
 * volume dir vdfd of backend_id) through the backend's cache. Returns the
 * outcome; with BASECACHE_OFF, _REFUSED or _SKIPPED dst is empty and the
 * caller copies from the image itself: cache trouble is logged and answered
 * that way (the caller's copy reports real errors). BASECACHE_FAILED, with
 * *ret_err: the share itself stopped answering (EIO, a broken or timed-out
 * connection), where a copy through the same share would only wait as long
 * again; the create fails with that error. */
enum basecache_outcome basecache_clone(struct agent *a, const char *backend_id, int vdfd,
	int img, const char *image, const struct stat *ist, int dst,
	struct copy_stats *stats, int *ret_err);

/* [{hash, state, images, size_bytes, allocated_bytes, created, last_used,
 * in_use}] of the cache in vdfd; caller owns *ret. */
int basecache_list(struct agent *a, const char *backend_id, int vdfd, bool alloc_known,
	json_t **ret);
/* Remove the entries (all, or the one named hash) nothing fills or clones
 * from; *ret = {removed: [hash], kept: [{hash, reason}]}. -ENOENT when
 * hash names no entry. */
int basecache_purge(struct agent *a, const char *backend_id, int vdfd, const char *hash,
	json_t **ret);
