/* Storage kinds: where a backend's volumes live and how the agent reaches
 * them. One file per kind behind one ops table (localfile.c, smb.c; later
 * nfs.c), like the manager's backends and the hypervisor drivers: adding a
 * kind is that file, one line in kinds.c and one in meson.build (plus its
 * routes in api/routes.c when it has its own attach routes). volumes.c,
 * the API and the VM supervisor only ever go through this table. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/validate.h"
#include "agent/agent.h"

struct capacity;

struct storage_kind_ops {
	const char *name;        /* the API's name: "smb", "localfile" */
	const char *file_prefix; /* volume files: <prefix>-<volume_id>.raw */
	/* Error codes of a write the backend refused, and the noun for it
	 * in messages ("share", "backend directory"). */
	const char *not_writable_code;
	const char *write_target;
	/* Errors only this kind can name (a broken connection: the SMB
	 * server went away mid-clone): r (-errno) while doing `what` into
	 * err and r, or 0 when r is nothing special here. May be NULL. */
	int (*io_error)(int r, const char *what, struct nq_error *err);
	/* Its volumes live on a mount of the mount table (mounts/): a mount
	 * that dies takes the VMs on it down (vms_storage_lost). */
	bool mounted;
	/* Several hosts may see its volumes (a network share): a running VM
	 * holds a lease file beside its volume (storage/leases.h). */
	bool shared;
	/* Validate a backend id of this kind into out; err names field. */
	int (*check_backend_id)(const char *field, const char *in,
		char out[NQ_UUID_LEN + 1], struct nq_error *err);
	/* The backend's volume directory as an O_DIRECTORY fd (caller
	 * closes) and its path in ret_path; the backend stays pinned (its
	 * mount kept, mounted again when it went away) until
	 * release_volume_dir. alloc_known (may be NULL): st_blocks is the
	 * real allocation (not through a FUSE bridge). -ENOENT with err
	 * "not_found" for an unknown backend. */
	int (*open_volume_dir)(struct agent *a, const char *backend_id, char *ret_path,
		size_t pathsz, bool *alloc_known, struct nq_error *err);
	/* Undo one open_volume_dir pin. */
	void (*release_volume_dir)(struct agent *a, const char *backend_id);
	/* Total, used and free bytes (and health, for mounted kinds). */
	int (*capacity)(struct agent *a, const char *backend_id, struct capacity *ret,
		struct nq_error *err);
	/* True when the backend's storage was found dead at restore, so a VM
	 * found running on it lost its disk. */
	bool (*backend_lost)(struct agent *a, const char *backend_id);
};

extern const struct storage_kind_ops storage_kind_smb;
extern const struct storage_kind_ops storage_kind_localfile;

/* The kind called name; NULL or "" is smb (requests and records from
 * before localfile backends name none). NULL for an unknown name. */
const struct storage_kind_ops *storage_kind_find(const char *name);
/* "smb or localfile": the names, for error messages. */
const char *storage_kind_names(void);
/* Each kind in turn: for (i = 0; (k = storage_kind_at(i)); i++). */
const struct storage_kind_ops *storage_kind_at(size_t i);
