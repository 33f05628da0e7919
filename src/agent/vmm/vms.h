/* VM supervision in the agent. One record per VM under
 * <state_dir>/vms/<id>.json (what to boot and the pid + start time of its
 * VMM), a run dir <state_dir>/vms/<id>/ (API socket, console log). The
 * VMM runs in its own session, so VMs keep running across an agent
 * restart; vms_restore adopts them again. While a VM runs, its backend's
 * mount is pinned.
 *
 * Every request arrives as validated ids and image names; the rootfs path
 * is the backend's volume file (volumes_pin_rootfs), built there.
 *
 * Thread-safe. Operations on one VM (create, start, stop, restart, delete)
 * run one after another; operations on different VMs run side by side, and
 * a slow one (a stop waits up to --vm-stop-timeout) holds up no other VM.
 * vms_list and vms_get never wait: a VM with an operation in progress is
 * reported as it was when that operation began, and a VM whose vms_create
 * has not finished is not reported at all. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/validate.h"
#include "agent/agent.h"
#include "agent/vmm/vmm.h"
#include "agent/storage/volumes.h"

#define VM_MAX 256
#define VM_BOOT_ARGS_MAX 256

struct vm_create {
	char id[NQ_UUID_LEN + 1];
	const struct storage_kind_ops *backend_kind; /* never NULL once parsed */
	char backend_id[NQ_UUID_LEN + 1];
	char volume_id[NQ_UUID_LEN + 1];
	unsigned vcpus, memory_mib;
	char kernel[129], initrd[129];        /* image dir names; initrd "" */
	char boot_args[VM_BOOT_ARGS_MAX + 1]; /* "" : the driver's default */
	char hypervisor[16];                  /* "" : the agent's default */
	bool start;
};

int vm_table_new(struct vm_table **ret);
void vm_table_free(struct vm_table *t);
/* Load the records and adopt the VMMs that are still running. Before any
 * other call, from one thread. */
int vms_restore(struct agent *a);
/* The hypervisor used when a request names none. */
const char *vms_default_hypervisor(const struct agent *a);

/* Each returns the VM as JSON in *ret (caller owns) on success. */
int vms_create(struct agent *a, const struct vm_create *c, json_t **ret,
	struct nq_error *err);
int vms_start(struct agent *a, const char *id, json_t **ret, struct nq_error *err);
/* Stop: the guest is asked (CtrlAltDel / SIGTERM to QEMU) and killed after
 * --vm-stop-timeout; used by migration and deletes. */
int vms_stop(struct agent *a, const char *id, json_t **ret, struct nq_error *err);
/* Power off at once (an operator's Stop): the guest is not asked. */
int vms_poweroff(struct agent *a, const char *id, json_t **ret, struct nq_error *err);
int vms_restart(struct agent *a, const char *id, json_t **ret, struct nq_error *err);
/* Ask the guest to power off (ACPI power button / CtrlAltDel), wait up to
 * timeout_s seconds, then power it off; last_exit.shutdown says which. */
#define VM_SHUTDOWN_TIMEOUT_DEFAULT 60
#define VM_SHUTDOWN_TIMEOUT_MAX 3600
int vms_shutdown(struct agent *a, const char *id, unsigned timeout_s, json_t **ret,
	struct nq_error *err);
int vms_get(struct agent *a, const char *id, json_t **ret, struct nq_error *err);
/* Stop (kill after the deadline) and forget. Idempotent. */
int vms_delete(struct agent *a, const char *id, struct nq_error *err);
json_t *vms_list(struct agent *a);
/* MiB of memory of the VMs that run or are being started (an operation in
 * progress counts), for GET /v1/host with --report-memory-mib. */
unsigned long long vms_memory_committed(struct agent *a);
/* The table's generation (GET /v1/vms?wait=&since=, header X-Generation):
 * waits up to timeout_ms while it equals since, then returns it (0 ms:
 * at once). vms_generation_stop (shutdown) ends every wait now and
 * later. bump: a change a client can see (vms*.c, recovery.c). */
unsigned long long vms_generation_wait(unsigned long long since, unsigned timeout_ms);
void vms_generation_bump(void);
void vms_generation_stop(void);
/* True once vms_generation_stop ran (other long polls end too). */
bool vms_generation_stopping(void);
/* Look at every VM now: reap VMMs that exited, record how (last_exit),
 * release their mounts. The reaper thread calls it periodically. */
void vms_settle_all(struct agent *a);

/* ---- reaper (reaper.c) ---- */
/* A thread that runs vms_settle_all every interval_ms, so a guest that
 * powers itself off leaves no zombie and no pinned mount behind. */
int vms_reaper_start(struct agent *a, unsigned interval_ms);
void vms_reaper_stop(void);
/* last_exit as the API shows it: null, or {code, signal, reason,
 * requested, at}; new reference. */
json_t *vmm_exit_json(const struct vmm_exit *e);

#define VM_STORAGE_LOST "storage connection lost"
/* The mount of these backends (of a mounted storage kind) died and was detached: every VM on them
 * whose VMM was started no later than `before` (clock ticks since boot,
 * vms_boot_ticks(); a VMM started on the new mount is left alone) is
 * killed and reported with state "error" and error VM_STORAGE_LOST; a
 * start brings it back. Waits for operations in progress on those VMs. */
void vms_storage_lost(struct agent *a, const char (*backend_ids)[NQ_UUID_LEN + 1],
	size_t n, unsigned long long before);
#define VM_FENCED "fenced: the lease on the share could not be renewed"
#define VM_FENCED_REASON                                                                  \
	"killed by the agent: its lease on the share could not be renewed (self-fencing)"
/* The lease fencer (storage/leases.h) killed vm_id's VMM: record it as
 * state "error", fenced (kept in its record across agent restarts; only
 * an explicit start clears it), and forget the lease. Waits for an
 * operation in progress on the VM. */
void vms_mark_fenced(struct agent *a, const char *vm_id);
/* Now, in the unit of /proc/PID/stat's starttime. */
unsigned long long vms_boot_ticks(void);
