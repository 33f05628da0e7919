/* VMs in the manager: rows in `vms`, a rootfs volume per VM in `volumes`,
 * and the agent that runs them. Creating a VM is a tracked operation: the
 * row is written at once in state "provisioning" and a worker clones the
 * image onto the backend (volume provisioning → ready) and boots it. A
 * failure leaves the VM in state "error" with its cause and no volume
 * (no file, no row); POST /v1/vms/{id}/start retries. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "manager/auth/auth.h"
#include "common/nq_error.h"

struct manager;

#define VM_CALL_TIMEOUT_MS 60000

struct vm_new {
	const char *name;
	unsigned vcpus, memory_mib;
	const char *image_id;
	const char *backend_id; /* NULL: the default backend */
	const char *host_id;    /* NULL: placement chooses */
	bool ha;                /* restart on another host when its host dies */
	/* Made from this snapshot (vms_snapshots.h) instead of image_id:
	 * its backend, and the image and host of the VM it was taken of. */
	const char *source_snapshot_id;
};

int vms_create(struct manager *m, const struct vm_new *v, char ret_id[AUTH_UUID_LEN + 1],
	struct nq_error *err);
enum vm_action { VM_START, VM_STOP, VM_RESTART };
int vms_action(struct manager *m, const char *id, enum vm_action act, struct nq_error *err);
int vms_delete(struct manager *m, const char *id, struct nq_error *err);
/* From the database only (vms_list.c): one VM with its volume and host
 * (new reference), or a page of VMs in creation order; NULL on error.
 * *ret_total (may be NULL) gets the number of VMs matching the filters. */
json_t *vms_get_json(struct manager *m, const char *id, struct nq_error *err);
/* vms_get_json plus host, backend, disk (from the agent), state_history
 * (vm_detail.c): GET /v1/vms/{id}. */
json_t *vms_detail_json(struct manager *m, const char *id, struct nq_error *err);
#define VMS_LIMIT_DEFAULT 100
#define VMS_LIMIT_MAX 1000
struct vm_list_query {
	unsigned limit; /* 1..VMS_LIMIT_MAX */
	unsigned long long offset;
	const char *host_id, *state; /* NULL: any */
};
/* The page as JSON array text (caller frees), NULL on error. */
char *vms_list_page(struct manager *m, const struct vm_list_query *q, long long *ret_total);
/* Free the pages vms_list_page keeps (shutdown). */
void vms_list_cache_clear(void);
/* POST /v1/vms/{id}/shutdown (vms_lifecycle.c): state "stopping" while
 * the agent asks the guest to power off and waits up to timeout_s, then
 * "stopped"; the event says graceful or forced. A stopped VM is left as
 * it is; another state is 409 invalid_state. */
#define VM_SHUTDOWN_TIMEOUT_DEFAULT 60
#define VM_SHUTDOWN_TIMEOUT_MAX 3600
int vms_shutdown(struct manager *m, const char *id, unsigned timeout_s,
	struct nq_error *err);
/* PATCH /v1/vms/{id} {vcpus?, memory_mib?} (0: unchanged): only while the
 * VM is stopped (or error), 409 invalid_state otherwise; more memory is
 * checked against the host's free memory. */
struct vm_resize {
	unsigned vcpus, memory_mib;
};
int vms_resize(struct manager *m, const char *id, const struct vm_resize *z,
	struct nq_error *err);
/* 422 insufficient_memory naming memory_mib and the host's free figure
 * when memory_mib exceeds what host_id (NULL: the best host) has free, as
 * its agent last reported (memory_free_mib). Hosts that never reported
 * memory are not checked. */
int vms_check_memory(struct manager *m, const char *host_id, unsigned memory_mib,
	struct nq_error *err);
/* PATCH /v1/vms/{id} {ha}: -ENOENT (err not_found) for an unknown VM. */
int vms_set_ha(struct manager *m, const char *id, bool ha, struct nq_error *err);
/* Record a finished clone: path, size, allocated (NULL when unknown),
 * state ready. */
struct volume_info;
int vms_volume_ready(struct manager *m, const char *vid, const struct volume_info *vi);
/* Settle what a previous manager process left in state "provisioning"
 * (vms_recover.c): one pass, -EAGAIN when some rows must be retried. */
int vms_recover_once(struct manager *m);
/* Run passes in a thread until everything is settled (after
 * storage_refresher_start; stopped with the refresher's stop flag). */
int vms_recover_start(struct manager *m);
void vms_recover_stop(struct manager *m);
/* Cold migration to host_id (vms_migrate.c): 409 backend_not_shared for a
 * localfile backend, 422 host_unsuitable when the host cannot take it,
 * 409 busy while another operation holds the VM. */
int vms_migrate(struct manager *m, const char *id, const char *host_id,
	struct nq_error *err);
/* Settle migrations a previous process left half done; -EAGAIN when some
 * must be tried again. */
int vms_migrate_recover(struct manager *m);
/* Wait for provisioning workers (shutdown). */
void vms_wait_idle(void);
