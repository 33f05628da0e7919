/* Disk snapshots of VMs (issue 13): a snapshot is a volume on the VM's
 * backend (a row in `volumes` with vm_id NULL, snapshot_of the VM and a
 * name unique per VM; migration 008), a file the agent names like every
 * volume (smb-<id>.raw). The agent of the VM's host takes it: a running
 * VM is paused, its disk flushed and copied, and resumed (crash-
 * consistent); a stopped VM's disk is copied server-side. Revert copies a
 * snapshot over the stopped VM's disk (temp file, then an atomic rename);
 * a VM can be created from a snapshot (vms.c, source_snapshot_id).
 *
 * Claims: every operation on a VM's snapshots holds the VM's claim
 * ("vm:<id>", 409 busy otherwise); a copy out of a snapshot (revert, a VM
 * being made from it) and a delete of it also hold "volume:<snapshot
 * id>", waiting for each other. Deleting a VM deletes its snapshots (like
 * Proxmox). Events: snapshot.created, snapshot.deleted, vm.reverted. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "manager/auth/auth.h"
#include "common/nq_error.h"

struct manager;
struct backend_env;
struct volume_info;
struct vm_row;

#define SNAPSHOT_NAME_FIELD "name"

/* The snapshots of VM vm_id, oldest first (404 for an unknown VM); new
 * reference, NULL with err. */
json_t *snapshots_list_json(struct manager *m, const char *vm_id, struct nq_error *err);
/* One snapshot; vm_id NULL: of any VM. New reference, NULL with err. */
json_t *snapshots_get_json(struct manager *m, const char *vm_id, const char *sid,
	struct nq_error *err);
/* Take a snapshot called name of VM vm_id; *ret_id gets its id. */
int snapshots_create(struct manager *m, const char *vm_id, const char *name,
	char ret_id[AUTH_UUID_LEN + 1], struct nq_error *err);
int snapshots_delete(struct manager *m, const char *vm_id, const char *sid,
	struct nq_error *err);
/* The stopped VM's disk becomes a copy of snapshot sid (which stays). */
int snapshots_revert(struct manager *m, const char *vm_id, const char *sid,
	struct nq_error *err);

/* For VM creation from a snapshot: the snapshot's backend, the VM it was
 * taken of and that VM's host and image (strings copied into *ret). */
struct snapshot_source {
	char backend_id[80];
	char vm_id[AUTH_UUID_LEN + 1];
	char host_id[80];
	char image_id[160];
};
int snapshots_source(struct manager *m, const char *sid, struct snapshot_source *ret,
	struct nq_error *err);
/* The provisioning worker of a VM made from snapshot sid: copy it into the
 * new volume vid on env's host (holding "volume:<sid>"). */
int snapshots_copy_to(struct manager *m, const struct backend_env *env, const char *sid,
	const char *vid, struct volume_info *ret, struct nq_error *err);
/* Deleting VM vm (its claim held): delete every snapshot of it, files
 * first, on env's host. Stops at the first failure. */
int snapshots_delete_all(struct manager *m, const struct vm_row *vm,
	const struct backend_env *env, struct nq_error *err);

/* ---- shared by vms_snapshots*.c only ---- */
#define SNAPSHOT_COLS                                                                     \
	"id, backend_id, snapshot_of, name, size_bytes, allocated_bytes, state,"          \
	" created_at"
/* Snapshot sid (of VM vm_id, or of any VM when vm_id is NULL) into *rows:
 * -ENOENT with err not_found (field, may be NULL) when there is none. */
struct db_rows;
int snapshots_fetch(struct manager *m, const char *vm_id, const char *sid,
	const char *field, struct db_rows *rows, struct nq_error *err);
/* POST …/volumes/<bid>/<vid>/copy (replace false) or …/revert on env's
 * agent: vid becomes a copy of volume src on backend bid. */
int snapshots_agent_copy(struct manager *m, const struct backend_env *env, const char *bid,
	const char *vid, const char *src, bool replace, struct volume_info *ret,
	struct nq_error *err);
