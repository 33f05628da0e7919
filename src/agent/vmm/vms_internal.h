/* Private to vmm/vms*.c and vmm/recovery.c: the VM table's types and the
 * steps one VM goes through. Locking rules: see the top of vms.c. */
#pragma once

#include <limits.h>
#include <pthread.h>

#include "agent/vmm/vms.h"

struct vm {
	struct vm_create c;
	struct vmm_proc proc;
	bool pinned;   /* backend mount pinned while the VMM runs */
	bool busy;     /* an operation works on a copy; see the top */
	bool creating; /* reserved by vms_create, not started yet */
	bool up;       /* the VMM ran when last looked at (settle, claim) */
	bool lost;     /* ended because its storage died: state "error" */
	bool fenced;   /* killed because its lease was not renewed: "error" */
	char rootfs[PATH_MAX + 128];
	struct vmm_exit last_exit; /* how its VMM last ended */
};

struct vm_table {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* broadcast when a VM stops being busy */
	struct vm *v[VM_MAX];
	int dirfd; /* <state_dir>/vms */
};

/* An unpin vm_settle() owes, paid once the table lock is dropped: releasing
 * a share's last pin unmounts it. */
struct unpin {
	const struct storage_kind_ops *kind;
	char backend_id[NQ_UUID_LEN + 1];
	char vm_id[NQ_UUID_LEN + 1]; /* its lease is released first */
};

struct vm *vm_find(struct vm_table *t, const char *id);
bool vm_running(struct vm *vm);
/* The VMM of vm is gone (or was stopped on request): record how it ended,
 * once, and forget its pid. */
void vm_note_exit(struct agent *a, struct vm *vm, bool requested);
/* rootfs path: pin the backend's mount (remounting it if needed). */
int vm_pin_rootfs(struct agent *a, struct vm *vm, struct nq_error *err);
/* Outside the table lock, on a VM the caller owns (a copy, or restore). */
void vm_unpin_rootfs(struct agent *a, struct vm *vm);
/* Under the lock: refresh `up`; a VMM that exited by itself (guest
 * poweroff) releases its mount into owed[*n]. A busy VM is left to its
 * operation, which holds the pin on its copy. */
void vm_settle(struct agent *a, struct vm *vm, struct unpin *owed, size_t *n);
void vm_pay_unpins(struct agent *a, const struct unpin *owed, size_t n);
/* Under the lock; state and pid as last seen (settle or claim). */
json_t *vm_json(struct agent *a, const struct vm *vm);
int vm_save(struct agent *a, const struct vm *vm);
/* Outside the lock, on a VM the caller owns: its disk died with the
 * mount, so its VMM is killed (a graceful stop cannot flush to a dead
 * disk) and it ends in "error" until it is started or stopped again. */
void vm_end_lost(struct agent *a, struct vm *vm);
/* What the driver needs to start or talk to vm's VMM. */
void vm_fill_spec(struct agent *a, const struct vm *vm, struct vmm_spec *s);
/* Connect the console pump to vm's serial socket (QEMU only). */
void vm_console_attach(struct agent *a, const struct vm *vm);
int vm_do_start(struct agent *a, struct vm *vm, struct nq_error *err);
void vm_do_stop(struct agent *a, struct vm *vm);
/* Terminate the VMM at once (SIGTERM, then SIGKILL): a power-off. */
void vm_do_poweroff(struct agent *a, struct vm *vm);
/* Ask the guest to power off, wait up to timeout_s, then kill; last_exit
 * says which (shutdown graceful or forced). */
void vm_do_shutdown(struct agent *a, struct vm *vm, unsigned timeout_s);
/* Under the lock: wait until no operation holds id, then hold it. NULL
 * when there is no such VM (any more: it may go while we wait, so look
 * it up again after every wake-up). */
struct vm *vm_claim(struct vm_table *t, const char *id);
/* Under the lock: the operation's copy w becomes the VM again. */
void vm_release(struct vm_table *t, struct vm *vm, const struct vm *w);
