/* Localfile backends on this host: backend id → a directory at or below
 * --local-root, where the backend's volumes live as local-<volume_id>.raw.
 * Nothing is mounted; the directory is created (0700) beneath the local
 * root without following symlinks, and must be writable and on a local
 * file system (an SMB or FUSE mount is refused: that is an smb backend).
 * Records persist as <state_dir>/localfile/<id>.json so a restarted agent
 * still knows where each backend's volumes are. */
#pragma once

#include <jansson.h>
#include <stddef.h>

#include "agent/agent.h"
#include "agent/mounts/mounts.h"

#define LOCALDIR_MAX 256

int localdirs_new(struct localdirs **ret);
void localdirs_free(struct localdirs *t);
/* Open (creating) the local root and load the records. */
int localdirs_restore(struct agent *a);
/* Register backend id with directory path ("" or NULL: the local root
 * itself), creating it and proving it writable. Idempotent; a second call
 * with another path moves the registration. ret_dir gets the directory. */
int localdirs_attach(struct agent *a, const char *id, const char *path, char *ret_dir,
	size_t dirsz, struct nq_error *err);
/* Forget the backend; its files stay. Unknown ids are not an error. */
int localdirs_detach(struct agent *a, const char *id, struct nq_error *err);
/* An O_DIRECTORY fd of the backend's directory (caller closes) and its
 * path in ret_dir. -ENOENT with err "not_found" for unknown backends. */
int localdirs_open(struct agent *a, const char *id, char *ret_dir, size_t dirsz,
	struct nq_error *err);
int localdirs_capacity(struct agent *a, const char *id, struct capacity *ret,
	struct nq_error *err);
/* [{backend_id, volume_dir}]; caller owns. */
json_t *localdirs_list_json(struct agent *a);
