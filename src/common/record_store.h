/* A directory of small JSON records, one per object: <dir>/<id>.json.
 * The agent keeps its state this way (backends, VMs, localfile dirs) so a
 * restarted agent can adopt what it left running.
 *
 * Records are written by us, but loading trusts nothing: the id in the
 * file name is checked by the caller's validator before the file is read,
 * files are read beneath the directory fd without following symlinks
 * (fs_read_file), the size is capped, the text must be one JSON object
 * without duplicate keys, and the caller re-validates every member. A bad
 * record is logged (file name and reason, never the content) and skipped. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "common/nq_error.h"

#define RECORD_MAX_DEFAULT (64 * 1024)
#define RECORD_ID_MAX 127

struct record_load {
	const char *what;   /* for the log: "backend", "VM", ... */
	size_t max_bytes;   /* per file; 0: RECORD_MAX_DEFAULT */
	size_t max_records; /* stop after this many accepted; 0: no limit */
	/* The id taken from the file name ("<id>.json"): 0 to read the file,
	 * < 0 to skip it. Required: ids build paths. */
	int (*valid_id)(const char *id);
	/* One parsed record (a JSON object; borrowed, valid during the call).
	 * Return 0 when taken, < 0 with err set to skip it (logged); -ENOMEM
	 * ends the load with -ENOMEM. */
	int (*load)(void *ud, const char *id, json_t *rec, struct nq_error *err);
	void *ud;
};

/* Load every <id>.json in dirfd's directory (dirfd is not consumed). Files
 * that do not end in ".json" or start with '.' (temp files of an atomic
 * write) are ignored. Returns 0, or -errno when the directory cannot be
 * read or a callback ran out of memory. */
int record_store_load_all(int dirfd, const struct record_load *o);

/* Write j (stolen; NULL means out of memory) as dirfd/<id>.json: compact
 * JSON, mode 0600, atomically (fs_write_atomic). */
int record_store_save(int dirfd, const char *id, json_t *j);

/* Delete dirfd/<id>.json; a missing file is not an error. */
int record_store_remove(int dirfd, const char *id);
