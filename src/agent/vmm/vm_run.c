/* One VM's process: start its VMM on its pinned rootfs, stop it, notice
 * how it ended, end it when its storage died; its JSON and its record.
 * Each works on a VM the caller owns (a claimed copy, or under the table
 * lock where the comment says so). */
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
#include "agent/vmm/console.h"
#include "agent/vmm/store.h"
#include "agent/vmm/vmm.h"
#include "agent/vmm/vms_internal.h"

bool
vm_running(struct vm *vm)
{
	return vmm_proc_alive(&vm->proc);
}

/* The VMM of vm is gone (or was stopped on request): record how it ended,
 * once, and forget its pid. */
void
vm_note_exit(struct agent *a, struct vm *vm, bool requested)
{
	char run_dir[PATH_MAX];

	int status = -1, r;

	if (vm->proc.pid <= 0)
		return;
	r = vmm_child_take(vm->proc.pid, &status);
	/* A stop saw the process gone: its leader may be a zombie while its
	 * other threads still exit, not yet reapable. Wait for that (briefly)
	 * so the exit is recorded as requested. */
	for (int i = 0; r == -EBUSY && requested && i < 250; i++) {
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
		r = vmm_child_take(vm->proc.pid, &status);
	}
	if (r == -EBUSY)
		return;
	vmm_exit_from_status(r == 0 ? status : -1, &vm->last_exit);
	vm->last_exit.requested = requested;
	if (!requested && vm->last_exit.has_status && !vm->last_exit.signal &&
		vm->last_exit.code != 0) {
		snprintf(run_dir, sizeof run_dir, "%s/vms/%s", a->cfg.state_dir, vm->c.id);
		(void)vmm_exit_cause(run_dir, vm->c.hypervisor, vm->c.memory_mib,
			vm->last_exit.cause, sizeof vm->last_exit.cause);
	}
	log_info("VM exited id=%s pid=%d code=%d signal=%d requested=%s", vm->c.id,
		(int)vm->proc.pid, vm->last_exit.code, vm->last_exit.signal,
		requested ? "yes" : "no");
	vm->proc.pid = 0;
	vm->proc.starttime = 0;
}

/* rootfs path: pin the backend's mount (remounting it if needed). */
int
vm_pin_rootfs(struct agent *a, struct vm *vm, struct nq_error *err)
{
	int r = volumes_pin_rootfs(a, vm->c.backend_kind, vm->c.backend_id,
		vm->c.volume_id, vm->rootfs, sizeof vm->rootfs, err);

	if (r >= 0)
		vm->pinned = true;
	return r;
}

/* Outside the table lock, on a VM the caller owns (a copy, or restore). */
void
vm_unpin_rootfs(struct agent *a, struct vm *vm)
{
	if (vm->pinned)
		volumes_unpin(a, vm->c.backend_kind, vm->c.backend_id);
	vm->pinned = false;
}

/* Under the lock; state and pid as last seen (settle or claim). */
static json_t *
lease_json(struct agent *a, const struct vm *vm)
{
	long long exp = 0;
	const char *st = vm->fenced ? "lost" : leases_state(a, vm->c.id, &exp);

	return json_pack("{s:s, s:o}", "state", st, "expires_at_ms",
		exp ? json_integer(exp) : json_null());
}

static json_t *
error_json(const struct vm *vm)
{
	if (vm->up)
		return json_null();
	if (vm->fenced)
		return json_string(VM_FENCED);
	return vm->lost ? json_string(VM_STORAGE_LOST) : json_null();
}

json_t *
vm_json(struct agent *a, const struct vm *vm)
{
	bool up = vm->up;

	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:o, s:o, "
			 "s:o, s:b, s:o}",
		"id", vm->c.id, "backend_kind", vm->c.backend_kind->name, "backend_id",
		vm->c.backend_id, "volume_id", vm->c.volume_id, "vcpus", (int)vm->c.vcpus,
		"memory_mib", (int)vm->c.memory_mib, "kernel", vm->c.kernel, "initrd",
		vm->c.initrd, "hypervisor", vm->c.hypervisor, "rootfs", vm->rootfs, "state",
		up                       ? "running"
		: vm->lost || vm->fenced ? "error"
					 : "stopped",
		"pid", up ? json_integer(vm->proc.pid) : json_null(), "last_exit",
		vmm_exit_json(&vm->last_exit), "error", error_json(vm), "fenced",
		!up && vm->fenced, "lease", lease_json(a, vm));
}

int
vm_save(struct agent *a, const struct vm *vm)
{
	return vm_record_save(a->vms->dirfd, &vm->c, &vm->proc, vm->fenced);
}

/* Outside the lock, on a VM the caller owns: its disk died with the
 * mount, so its VMM is killed (a graceful stop cannot flush to a dead
 * disk) and it ends in "error" until it is started or stopped again. */
void
vm_end_lost(struct agent *a, struct vm *vm)
{
	if (vm_running(vm)) {
		kill(vm->proc.pid, SIGKILL);
		(void)vmm_proc_wait_exit(&vm->proc, 5000);
	}
	log_warn("VM ended: storage connection lost id=%s backend_id=%s", vm->c.id,
		vm->c.backend_id);
	vm->proc.pid = 0;
	vm->proc.starttime = 0;
	vm->lost = true;
	leases_release(a, vm->c.id);
	vm_unpin_rootfs(a, vm);
	(void)vm_save(a, vm);
}

/* A QEMU VM's serial socket gets the console pump (console.h). */
void
vm_console_attach(struct agent *a, const struct vm *vm)
{
	char path[PATH_MAX];

	if (strcmp(vm->c.hypervisor, "qemu"))
		return;
	snprintf(path, sizeof path, "%s/vms/%s/" VMM_CONSOLE_SOCK, a->cfg.state_dir,
		vm->c.id);
	console_attach(vm->c.id, path);
}

void
vm_fill_spec(struct agent *a, const struct vm *vm, struct vmm_spec *s)
{
	bool fc = !strcmp(vm->c.hypervisor, "firecracker");

	memset(s, 0, sizeof *s);
	snprintf(s->id, sizeof s->id, "%s", vm->c.id);
	s->vcpus = vm->c.vcpus;
	s->memory_mib = vm->c.memory_mib;
	snprintf(s->kernel, sizeof s->kernel, "%s/%s", a->cfg.image_dir, vm->c.kernel);
	if (vm->c.initrd[0])
		snprintf(s->initrd, sizeof s->initrd, "%s/%s", a->cfg.image_dir,
			vm->c.initrd);
	if (vm->c.boot_args[0])
		snprintf(s->boot_args, sizeof s->boot_args, "%s", vm->c.boot_args);
	else
		snprintf(s->boot_args, sizeof s->boot_args, "%s",
			fc ? "console=ttyS0 reboot=k panic=1 pci=off"
			   : "console=ttyS0 panic=-1 quiet");
	snprintf(s->rootfs, sizeof s->rootfs, "%s", vm->rootfs);
	snprintf(s->run_dir, sizeof s->run_dir, "%s/vms/%s", a->cfg.state_dir, vm->c.id);
	snprintf(s->program, sizeof s->program, "%s",
		fc ? a->cfg.firecracker_path : a->cfg.qemu_path);
	s->kvm = a->cfg.qemu_kvm;
}

int
vm_do_start(struct agent *a, struct vm *vm, struct nq_error *err)
{
	const struct vmm_ops *ops = vmm_find(vm->c.hypervisor);
	struct vmm_spec spec;
	struct vmm_proc p;
	char rel[NQ_UUID_LEN + 8];
	int r, fd;

	if (vm_running(vm))
		return 0;
	/* A VMM that exited by itself left its pin on our copy. */
	vm_unpin_rootfs(a, vm);
	snprintf(rel, sizeof rel, "%s", vm->c.id);
	fd = fs_mkdir_beneath(a->vms->dirfd, rel, 0700);
	if (fd < 0)
		return nq_error_setr(err, fd, "io_error", NULL,
			"cannot create the VM's run directory: %s", strerror(-fd));
	close(fd);
	r = vm_pin_rootfs(a, vm, err);
	if (r < 0)
		return r;
	/* Never two writers: the lease first, then the VMM. */
	r = leases_acquire(a, vm->c.backend_kind, vm->c.id, vm->c.volume_id, vm->rootfs,
		err);
	if (r < 0) {
		vm_unpin_rootfs(a, vm);
		return r;
	}
	vm_fill_spec(a, vm, &spec);
	r = ops->start(&spec, &p, err);
	if (r < 0) {
		leases_release(a, vm->c.id);
		vm_unpin_rootfs(a, vm);
		return r;
	}
	leases_set_proc(a, vm->c.id, &p);
	vm_console_attach(a, vm);
	vm->proc = p;
	vm->lost = false;
	vm->fenced = false;
	r = vm_save(a, vm);
	if (r < 0)
		log_warn("cannot record VM pid id=%s err=%s", vm->c.id, strerror(-r));
	log_info("VM started id=%s pid=%d hypervisor=%s rootfs=%s", vm->c.id, (int)p.pid,
		vm->c.hypervisor, vm->rootfs);
	return 0;
}

/* After the VMM is gone: forget its pid, lease and pin; record it. */
static void
vm_after_stop(struct agent *a, struct vm *vm)
{
	vm_note_exit(a, vm, false); /* exited by itself before the stop */
	vm->proc.pid = 0;
	vm->proc.starttime = 0;
	vm->lost = false;
	leases_release(a, vm->c.id);
	vm_unpin_rootfs(a, vm);
	(void)vm_save(a, vm);
}

void
vm_do_stop(struct agent *a, struct vm *vm)
{
	struct vmm_spec spec;

	if (vm_running(vm)) {
		vm_fill_spec(a, vm, &spec);
		if (vmm_find(vm->c.hypervisor)->request_shutdown(&spec, &vm->proc) < 0 ||
			!vmm_proc_wait_exit(&vm->proc, (int)a->cfg.vm_stop_timeout * 1000)) {
			log_warn("VM did not stop in time, killing id=%s pid=%d", vm->c.id,
				(int)vm->proc.pid);
			vmm_proc_kill(&vm->proc);
		}
		vm_note_exit(a, vm, true);
		log_info("VM stopped id=%s", vm->c.id);
	}
	vm_after_stop(a, vm);
}

/* Power off: the VMM is terminated at once, the guest is not asked. */
void
vm_do_poweroff(struct agent *a, struct vm *vm)
{
	if (vm_running(vm)) {
		vmm_proc_kill(&vm->proc);
		vm_note_exit(a, vm, true);
		log_info("VM powered off id=%s", vm->c.id);
	}
	vm_after_stop(a, vm);
}

void
vm_do_shutdown(struct agent *a, struct vm *vm, unsigned timeout_s)
{
	struct vmm_spec spec;
	bool graceful;
	int r;

	if (vm_running(vm)) {
		vm_fill_spec(a, vm, &spec);
		r = vmm_find(vm->c.hypervisor)->guest_shutdown(&spec, &vm->proc);
		if (r < 0)
			log_warn("cannot ask the guest to shut down id=%s err=%s",
				vm->c.id, strerror(-r));
		graceful = r >= 0 && vmm_proc_wait_exit(&vm->proc, (int)timeout_s * 1000);
		if (!graceful) {
			log_warn("VM did not shut down within %u s, powering it off id=%s"
				 " pid=%d",
				timeout_s, vm->c.id, (int)vm->proc.pid);
			vmm_proc_kill(&vm->proc);
		}
		vm_note_exit(a, vm, true);
		vm->last_exit
			.shutdown = graceful ? VMM_SHUTDOWN_GRACEFUL : VMM_SHUTDOWN_FORCED;
		log_info("VM shut down id=%s how=%s", vm->c.id,
			graceful ? "graceful" : "forced");
	}
	vm_after_stop(a, vm);
}
