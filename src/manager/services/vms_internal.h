/* Shared by the VM service's files (vms.c, vms_provision.c); nothing
 * outside services/vms*.c includes this. */
#pragma once

#include <stdbool.h>

#include "common/nq_error.h"
#include "manager/db/rows.h"

struct manager;

/* The VM row id into *rows and *ret (pointing into rows); -ENOENT when
 * there is none. */
int vms_fetch(struct manager *m, const char *id, struct db_rows *rows, struct vm_row *ret);
/* The volume of VM vm_id into *rows and *ret; -ENOENT when it has none. */
int vms_fetch_volume(struct manager *m, const char *vm_id, struct db_rows *rows,
	struct volume_row *ret);
/* Record state and error (NULL: none); a database error is logged. */
void vms_set_state(struct manager *m, const char *id, const char *state, const char *error);
/* New volume row in state provisioning for VM id on its backend. */
int vms_insert_volume(struct manager *m, const char *id, const char *backend_id);
/* The agent environment of the VM's host (hosts_env; release with
 * hosts_env_release). */
struct backend_env;
int vms_env(struct manager *m, const struct vm_row *vm, struct backend_env *ret,
	struct nq_error *err);
int vms_env_by_id(struct manager *m, const char *vm_id, struct backend_env *ret,
	struct nq_error *err);
/* POST /v1/vms on env's agent: the VM with its volume, started or not. */
int vms_agent_describe(struct manager *m, const struct backend_env *env,
	const struct vm_row *vm, const char *vid, bool start, struct nq_error *err);
/* Boot on the agent: start the VM it knows, or describe it first. */
int vms_agent_boot(struct manager *m, const struct vm_row *vm, const char *vid,
	struct nq_error *err);
/* Start the provisioning worker for VM id, handing it the VM's claim,
 * which the caller holds. On failure the claim is still the caller's. */
int vms_spawn_worker(struct manager *m, const char *id);
