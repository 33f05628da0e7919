/* VMs across agent restarts and storage failures: adopting the VMMs
 * still running from their records, reaping the ones that exited by
 * themselves (the reaper calls vms_settle_all), ending the ones whose
 * mount died. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/record_store.h"
#include "agent/storage/leases.h"
#include "agent/vmm/store.h"
#include "agent/vmm/vmm.h"
#include "agent/vmm/vms_internal.h"

/* Under the lock: refresh `up`; a VMM that exited by itself (guest
 * poweroff) releases its mount into owed[*n]. A busy VM is left to its
 * operation, which holds the pin on its copy. */
void
vm_settle(struct agent *a, struct vm *vm, struct unpin *owed, size_t *n)
{
	bool was_up = vm->up;
	pid_t pid = vm->proc.pid;

	if (vm->busy)
		return;
	vm->up = vm_running(vm);
	if (!vm->up && vm->proc.pid > 0 && leases_fenced(a, vm->c.id)) {
		/* The fencer killed it; vms_mark_fenced records it. */
		vm->fenced = true;
		vm_note_exit(a, vm, false);
		vm->last_exit.fenced = true;
	}
	if (!vm->up)
		vm_note_exit(a, vm, false);
	if (was_up != vm->up || pid != vm->proc.pid)
		vms_generation_bump(); /* long polls learn of the exit now */
	if (vm->up || !vm->pinned)
		return;
	vm->pinned = false;
	owed[*n].kind = vm->c.backend_kind;
	memcpy(owed[*n].backend_id, vm->c.backend_id, sizeof owed[*n].backend_id);
	memcpy(owed[*n].vm_id, vm->c.id, sizeof owed[*n].vm_id);
	(*n)++;
}

/* Guest exit: its lease goes (unless fenced), then the mount pin. */
void
vm_pay_unpins(struct agent *a, const struct unpin *owed, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		leases_release(a, owed[i].vm_id);
		volumes_unpin(a, owed[i].kind, owed[i].backend_id);
	}
}

static int
valid_vm_id(const char *id)
{
	char uuid[NQ_UUID_LEN + 1];

	return validate_uuid("id", id, uuid, NULL);
}

/* One VM record: adopt its VMM if it still runs, else keep it stopped. */
static int
restore_one(void *ud, const char *id, json_t *rec, struct nq_error *err)
{
	struct agent *a = ud;
	struct vm_table *t = a->vms;
	size_t k = 0;
	struct vm *vm;

	(void)id;
	while (k < VM_MAX && t->v[k])
		k++;
	if (k == VM_MAX)
		return nq_error_set(err, "conflict", NULL, "more than %d VMs", VM_MAX);
	vm = calloc(1, sizeof *vm);
	if (!vm)
		return -ENOMEM;
	if (vm_record_parse(rec, &vm->c, &vm->proc, &vm->fenced) < 0) {
		free(vm);
		return nq_error_set(err, "invalid_field", NULL,
			"the record does not validate");
	}
	if (vmm_proc_alive(&vm->proc) &&
		vm->c.backend_kind->backend_lost(a, vm->c.backend_id)) {
		vm_end_lost(a, vm); /* its disk was on a mount that died */
	} else if (vmm_proc_alive(&vm->proc)) {
		struct nq_error perr = { 0 };
		if (vm_pin_rootfs(a, vm, &perr) < 0)
			log_warn("running VM without its mount id=%s err=%s", vm->c.id,
				perr.message);
		else
			leases_adopt(a, vm->c.backend_kind, vm->c.id, vm->c.volume_id,
				vm->rootfs, &vm->proc);
		vm_console_attach(a, vm);
		log_info("adopted running VM id=%s pid=%d hypervisor=%s", vm->c.id,
			(int)vm->proc.pid, vm->c.hypervisor);
	} else {
		vm->proc.pid = 0;
	}
	t->v[k] = vm;
	return 0;
}

int
vms_restore(struct agent *a)
{
	struct vm_table *t = a->vms;
	const struct record_load o = {
		.what = "VM",
		.max_bytes = VM_RECORD_MAX,
		.max_records = VM_MAX,
		.valid_id = valid_vm_id,
		.load = restore_one,
		.ud = a,
	};

	t->dirfd = fs_mkdir_beneath(a->state_dirfd, "vms", 0700);
	if (t->dirfd < 0)
		return t->dirfd;
	return record_store_load_all(t->dirfd, &o);
}

void
vms_settle_all(struct agent *a)
{
	struct vm_table *t = a->vms;
	struct unpin owed[VM_MAX];
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < VM_MAX; i++)
		if (t->v[i])
			vm_settle(a, t->v[i], owed, &n);
	pthread_mutex_unlock(&t->lock);
	vm_pay_unpins(a, owed, n);
}

static bool
has_id(const char (*ids)[NQ_UUID_LEN + 1], size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ids[i], id))
			return true;
	return false;
}

void
vms_mark_fenced(struct agent *a, const char *vm_id)
{
	struct vm_table *t = a->vms;
	struct vm *vm, w;

	pthread_mutex_lock(&t->lock);
	vm = vm_claim(t, vm_id);
	if (!vm) {
		pthread_mutex_unlock(&t->lock);
		leases_forget(a, vm_id);
		return;
	}
	w = *vm;
	pthread_mutex_unlock(&t->lock);
	/* The fencer's SIGKILL is on its way. A VMM whose last close waits
	 * on a hung mount stays in exit (no user code runs any more) until
	 * the mount answers; the reaper collects it then. */
	if (vm_running(&w)) {
		kill(w.proc.pid, SIGKILL);
		(void)vmm_proc_wait_exit(&w.proc, 1000);
	}
	if (w.proc.pid > 0) {
		vm_note_exit(a, &w, false);
		if (w.proc.pid > 0) { /* not reaped yet: killed, status unknown */
			vmm_exit_from_status(-1, &w.last_exit);
			w.last_exit.signal = SIGKILL;
		}
		w.last_exit.fenced = true;
	}
	w.proc.pid = 0;
	w.proc.starttime = 0;
	w.fenced = true;
	vm_unpin_rootfs(a, &w);
	(void)vm_save(a, &w);
	log_warn("VM fenced id=%s volume_id=%s: %s", w.c.id, w.c.volume_id, VM_FENCED);
	pthread_mutex_lock(&t->lock);
	vm_release(t, vm, &w);
	pthread_mutex_unlock(&t->lock);
	leases_forget(a, vm_id);
}

unsigned long long
vms_boot_ticks(void)
{
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);

	clock_gettime(CLOCK_BOOTTIME, &ts);
	hz = hz > 0 ? hz : 100;
	return (unsigned long long)ts.tv_sec * (unsigned long long)hz +
	       (unsigned long long)ts.tv_nsec / (1000000000ULL / (unsigned long long)hz) +
	       1;
}

void
vms_storage_lost(struct agent *a, const char (*backend_ids)[NQ_UUID_LEN + 1], size_t n,
	unsigned long long before)
{
	struct vm_table *t = a->vms;

	for (size_t i = 0; i < VM_MAX; i++) {
		char id[NQ_UUID_LEN + 1];
		struct vm *vm, w;

		pthread_mutex_lock(&t->lock);
		vm = t->v[i];
		if (!vm || vm->creating || !vm->c.backend_kind->mounted ||
			!has_id(backend_ids, n, vm->c.backend_id)) {
			pthread_mutex_unlock(&t->lock);
			continue;
		}
		memcpy(id, vm->c.id, sizeof id);
		vm = vm_claim(t, id);
		if (vm) {
			w = *vm;
			pthread_mutex_unlock(&t->lock);
			if ((w.up || w.pinned) && w.proc.starttime <= before)
				vm_end_lost(a, &w);
			pthread_mutex_lock(&t->lock);
			vm_release(t, vm, &w);
		}
		pthread_mutex_unlock(&t->lock);
	}
}
