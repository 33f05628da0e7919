/* VM supervision: records, VMM processes, adoption after restart.
 *
 * Locking. The table lock protects the array and every field of every
 * struct vm, and is never held across a slow call: starting a VMM, stopping
 * one and waiting for it to exit (up to --vm-stop-timeout), pinning a
 * backend (which may mount a network share) or unpinning one (which may
 * unmount it). So a slow stop of one VM never holds up GET /v1/vms, which
 * the manager polls with a short timeout, nor operations on other VMs.
 *
 * An operation claims its VM under the lock: it waits on `idle` while
 * another operation holds the VM (two operations on one VM run one after
 * the other), sets busy, copies the VM, drops the lock and works on its
 * copy only; then it writes the copy back under the lock, clears busy and
 * wakes the waiters. Nobody else writes a busy VM: list and get report it
 * as it was when the operation began (its state and pid from then), and
 * settle() leaves it to the operation. A VM that vms_create has reserved
 * but not yet started is not listed. `pinned` changes only on the copy an
 * operation owns or under the lock, so every pin has exactly one unpin. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
#include "agent/vmm/vmm.h"
#include "agent/vmm/vms.h"
#include "agent/vmm/store.h"

struct vm {
	struct vm_create c;
	struct vmm_proc proc;
	bool pinned;   /* backend mount pinned while the VMM runs */
	bool busy;     /* an operation works on a copy; see the top */
	bool creating; /* reserved by vms_create, not started yet */
	bool up;       /* the VMM ran when last looked at (settle, claim) */
	bool lost;     /* ended because its storage died: state "error" */
	char rootfs[PATH_MAX + 128];
	struct vmm_exit last_exit; /* how its VMM last ended */
};

struct vm_table {
	pthread_mutex_t lock;
	pthread_cond_t idle; /* broadcast when a VM stops being busy */
	struct vm *v[VM_MAX];
	int dirfd; /* <state_dir>/vms */
};

int
vm_table_new(struct vm_table **ret)
{
	struct vm_table *t = calloc(1, sizeof *t);

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->idle, NULL);
	t->dirfd = -1;
	*ret = t;
	return 0;
}

void
vm_table_free(struct vm_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < VM_MAX; i++)
		free(t->v[i]);
	closep(&t->dirfd);
	pthread_cond_destroy(&t->idle);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

const char *
vms_default_hypervisor(const struct agent *a)
{
	if (a->cfg.hypervisor && *a->cfg.hypervisor && strcmp(a->cfg.hypervisor, "auto"))
		return a->cfg.hypervisor;
	return access(a->cfg.firecracker_path, X_OK) == 0 ? "firecracker" : "qemu";
}

static struct vm *
find(struct vm_table *t, const char *id)
{
	for (size_t i = 0; i < VM_MAX; i++)
		if (t->v[i] && !strcmp(t->v[i]->c.id, id))
			return t->v[i];
	return NULL;
}

static bool
running(struct vm *vm)
{
	return vmm_proc_alive(&vm->proc);
}

/* The VMM of vm is gone (or was stopped on request): record how it ended,
 * once, and forget its pid. */
static void
note_exit(struct vm *vm, bool requested)
{
	int status = -1, r;

	if (vm->proc.pid <= 0)
		return;
	r = vmm_child_take(vm->proc.pid, &status);
	if (r == -EBUSY)
		return;
	vmm_exit_from_status(r == 0 ? status : -1, &vm->last_exit);
	vm->last_exit.requested = requested;
	log_info("VM exited id=%s pid=%d code=%d signal=%d requested=%s", vm->c.id,
		(int)vm->proc.pid, vm->last_exit.code, vm->last_exit.signal,
		requested ? "yes" : "no");
	vm->proc.pid = 0;
	vm->proc.starttime = 0;
}

/* rootfs path: pin the backend's mount (remounting it if needed). */
static int
pin_rootfs(struct agent *a, struct vm *vm, struct nq_error *err)
{
	int r = volumes_pin_rootfs(a, vm->c.backend_kind, vm->c.backend_id, vm->c.volume_id,
		vm->rootfs, sizeof vm->rootfs, err);

	if (r >= 0)
		vm->pinned = true;
	return r;
}

/* Outside the table lock, on a VM the caller owns (a copy, or restore). */
static void
unpin_rootfs(struct agent *a, struct vm *vm)
{
	if (vm->pinned)
		volumes_unpin(a, vm->c.backend_kind, vm->c.backend_id);
	vm->pinned = false;
}

/* An unpin settle() owes, paid once the table lock is dropped: releasing
 * a share's last pin unmounts it. */
struct unpin {
	const struct storage_kind_ops *kind;
	char backend_id[NQ_UUID_LEN + 1];
};

/* Under the lock: refresh `up`; a VMM that exited by itself (guest
 * poweroff) releases its mount into owed[*n]. A busy VM is left to its
 * operation, which holds the pin on its copy. */
static void
settle(struct vm *vm, struct unpin *owed, size_t *n)
{
	if (vm->busy)
		return;
	vm->up = running(vm);
	if (!vm->up)
		note_exit(vm, false);
	if (vm->up || !vm->pinned)
		return;
	vm->pinned = false;
	owed[*n].kind = vm->c.backend_kind;
	memcpy(owed[*n].backend_id, vm->c.backend_id, sizeof owed[*n].backend_id);
	(*n)++;
}

static void
pay_unpins(struct agent *a, const struct unpin *owed, size_t n)
{
	for (size_t i = 0; i < n; i++)
		volumes_unpin(a, owed[i].kind, owed[i].backend_id);
}

/* Under the lock; state and pid as last seen (settle or claim). */
static json_t *
vm_json(const struct vm *vm)
{
	bool up = vm->up;

	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}",
		"id", vm->c.id, "backend_kind", vm->c.backend_kind->name,
		"backend_id", vm->c.backend_id,
		"volume_id", vm->c.volume_id, "vcpus", (int)vm->c.vcpus,
		"memory_mib", (int)vm->c.memory_mib, "kernel", vm->c.kernel,
		"initrd", vm->c.initrd, "hypervisor", vm->c.hypervisor,
		"rootfs", vm->rootfs,
		"state", up ? "running" : vm->lost ? "error" : "stopped",
		"pid", up ? json_integer(vm->proc.pid) : json_null(),
		"last_exit", vmm_exit_json(&vm->last_exit),
		"error", !up && vm->lost ? json_string(VM_STORAGE_LOST) : json_null());
}

static int
save(struct agent *a, const struct vm *vm)
{
	return vm_record_save(a->vms->dirfd, &vm->c, &vm->proc);
}

/* Outside the lock, on a VM the caller owns: its disk died with the
 * mount, so its VMM is killed (a graceful stop cannot flush to a dead
 * disk) and it ends in "error" until it is started or stopped again. */
static void
end_lost(struct agent *a, struct vm *vm)
{
	if (running(vm)) {
		kill(vm->proc.pid, SIGKILL);
		(void)vmm_proc_wait_exit(&vm->proc, 5000);
	}
	log_warn("VM ended: storage connection lost id=%s backend_id=%s", vm->c.id,
		vm->c.backend_id);
	vm->proc.pid = 0;
	vm->proc.starttime = 0;
	vm->lost = true;
	unpin_rootfs(a, vm);
	(void)save(a, vm);
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
	if (vm_record_parse(rec, &vm->c, &vm->proc) < 0) {
		free(vm);
		return nq_error_set(err, "invalid_field", NULL,
			"the record does not validate");
	}
	if (vmm_proc_alive(&vm->proc) && vm->c.backend_kind->backend_lost(a, vm->c.backend_id)) {
		end_lost(a, vm); /* its disk was on a mount that died */
	} else if (vmm_proc_alive(&vm->proc)) {
		struct nq_error perr = { 0 };
		if (pin_rootfs(a, vm, &perr) < 0)
			log_warn("running VM without its mount id=%s err=%s", vm->c.id,
				perr.message);
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
		.what = "VM", .max_bytes = VM_RECORD_MAX, .max_records = VM_MAX,
		.valid_id = valid_vm_id, .load = restore_one, .ud = a,
	};

	t->dirfd = fs_mkdir_beneath(a->state_dirfd, "vms", 0700);
	if (t->dirfd < 0)
		return t->dirfd;
	return record_store_load_all(t->dirfd, &o);
}

static void
fill_spec(struct agent *a, const struct vm *vm, struct vmm_spec *s)
{
	bool fc = !strcmp(vm->c.hypervisor, "firecracker");

	memset(s, 0, sizeof *s);
	snprintf(s->id, sizeof s->id, "%s", vm->c.id);
	s->vcpus = vm->c.vcpus;
	s->memory_mib = vm->c.memory_mib;
	snprintf(s->kernel, sizeof s->kernel, "%s/%s", a->cfg.image_dir, vm->c.kernel);
	if (vm->c.initrd[0])
		snprintf(s->initrd, sizeof s->initrd, "%s/%s", a->cfg.image_dir, vm->c.initrd);
	if (vm->c.boot_args[0])
		snprintf(s->boot_args, sizeof s->boot_args, "%s", vm->c.boot_args);
	else
		snprintf(s->boot_args, sizeof s->boot_args, "%s", fc
			? "console=ttyS0 reboot=k panic=1 pci=off"
			: "console=ttyS0 panic=-1 quiet");
	snprintf(s->rootfs, sizeof s->rootfs, "%s", vm->rootfs);
	snprintf(s->run_dir, sizeof s->run_dir, "%s/vms/%s", a->cfg.state_dir, vm->c.id);
	snprintf(s->program, sizeof s->program, "%s",
		fc ? a->cfg.firecracker_path : a->cfg.qemu_path);
	s->kvm = a->cfg.qemu_kvm;
}

static int
do_start(struct agent *a, struct vm *vm, struct nq_error *err)
{
	const struct vmm_ops *ops = vmm_find(vm->c.hypervisor);
	struct vmm_spec spec;
	struct vmm_proc p;
	char rel[NQ_UUID_LEN + 8];
	int r, fd;

	if (running(vm))
		return 0;
	/* A VMM that exited by itself left its pin on our copy. */
	unpin_rootfs(a, vm);
	snprintf(rel, sizeof rel, "%s", vm->c.id);
	fd = fs_mkdir_beneath(a->vms->dirfd, rel, 0700);
	if (fd < 0)
		return nq_error_setr(err, fd, "io_error", NULL,
			"cannot create the VM's run directory: %s", strerror(-fd));
	close(fd);
	r = pin_rootfs(a, vm, err);
	if (r < 0)
		return r;
	fill_spec(a, vm, &spec);
	r = ops->start(&spec, &p, err);
	if (r < 0) {
		unpin_rootfs(a, vm);
		return r;
	}
	vm->proc = p;
	vm->lost = false;
	r = save(a, vm);
	if (r < 0)
		log_warn("cannot record VM pid id=%s err=%s", vm->c.id, strerror(-r));
	log_info("VM started id=%s pid=%d hypervisor=%s rootfs=%s", vm->c.id,
		(int)p.pid, vm->c.hypervisor, vm->rootfs);
	return 0;
}

static void
do_stop(struct agent *a, struct vm *vm)
{
	struct vmm_spec spec;

	if (running(vm)) {
		fill_spec(a, vm, &spec);
		if (vmm_find(vm->c.hypervisor)->request_shutdown(&spec, &vm->proc) < 0 ||
		    !vmm_proc_wait_exit(&vm->proc,
			    (int)a->cfg.vm_stop_timeout * 1000)) {
			log_warn("VM did not stop in time, killing id=%s pid=%d", vm->c.id,
				(int)vm->proc.pid);
			vmm_proc_kill(&vm->proc);
		}
		note_exit(vm, true);
		log_info("VM stopped id=%s", vm->c.id);
	}
	note_exit(vm, false); /* exited by itself before the stop */
	vm->proc.pid = 0;
	vm->proc.starttime = 0;
	vm->lost = false;
	unpin_rootfs(a, vm);
	(void)save(a, vm);
}

static int
check_image(struct agent *a, const char *field, const char *name, struct nq_error *err)
{
	struct stat st;

	if (fstatat(a->image_dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return nq_error_setr(err, -ENOENT, "image_not_found", field,
			"%s '%s' is not in the image directory", field, name);
	return 0;
}

/* Under the lock: wait until no operation holds id, then hold it. NULL
 * when there is no such VM (any more: it may go while we wait, so look
 * it up again after every wake-up). */
static struct vm *
claim(struct vm_table *t, const char *id)
{
	struct vm *vm;

	while ((vm = find(t, id)) && vm->busy)
		pthread_cond_wait(&t->idle, &t->lock);
	if (vm) {
		vm->up = running(vm);
		vm->busy = true;
	}
	return vm;
}

/* Under the lock: the operation's copy w becomes the VM again. */
static void
release(struct vm_table *t, struct vm *vm, const struct vm *w)
{
	*vm = *w;
	vm->busy = false;
	vm->creating = false;
	pthread_cond_broadcast(&t->idle);
}

int
vms_create(struct agent *a, const struct vm_create *c, json_t **ret, struct nq_error *err)
{
	struct vm_table *t = a->vms;
	_cleanup_free_ struct vm *vm = NULL;
	struct unpin owed[1];
	size_t slot = VM_MAX, n = 0;
	struct vm w;
	int r;

	if ((r = check_image(a, "kernel", c->kernel, err)) < 0 ||
	    (c->initrd[0] && (r = check_image(a, "initrd", c->initrd, err)) < 0))
		return r;
	vm = calloc(1, sizeof *vm);
	if (!vm)
		return -ENOMEM;
	vm->c = *c;
	if (!vm->c.hypervisor[0])
		snprintf(vm->c.hypervisor, sizeof vm->c.hypervisor, "%s",
			vms_default_hypervisor(a));
	/* Reserve the id now, so a second create of it is 409 at once. */
	vm->busy = vm->creating = true;
	pthread_mutex_lock(&t->lock);
	if (find(t, c->id)) {
		pthread_mutex_unlock(&t->lock);
		return nq_error_set(err, "already_exists", "id", "VM %s already exists", c->id);
	}
	for (size_t i = 0; i < VM_MAX && slot == VM_MAX; i++)
		if (!t->v[i])
			slot = i;
	if (slot == VM_MAX) {
		pthread_mutex_unlock(&t->lock);
		return nq_error_setr(err, -ENOSPC, "conflict", NULL,
			"this host runs %d VMs already", VM_MAX);
	}
	t->v[slot] = vm;
	w = *vm;
	pthread_mutex_unlock(&t->lock);

	if (c->start)
		r = do_start(a, &w, err);
	else if ((r = pin_rootfs(a, &w, err)) >= 0)
		unpin_rootfs(a, &w);
	if (r >= 0 && (r = save(a, &w)) < 0) {
		do_stop(a, &w);
		nq_error_setr(err, r, "io_error", NULL, "cannot record the VM: %s",
			strerror(-r));
	}

	pthread_mutex_lock(&t->lock);
	if (r < 0) {
		/* Nobody frees a busy VM but its owner: slot still holds it. */
		t->v[slot] = NULL;
		pthread_cond_broadcast(&t->idle);
	} else {
		release(t, vm, &w);
		settle(vm, owed, &n);
		*ret = vm_json(vm);
		TAKE_PTR(vm);
	}
	pthread_mutex_unlock(&t->lock);
	pay_unpins(a, owed, n);
	return r < 0 ? r : 0;
}

typedef int (*vm_op_fn)(struct agent *a, struct vm *vm, struct nq_error *err);

static int
op_start(struct agent *a, struct vm *vm, struct nq_error *err)
{
	return do_start(a, vm, err);
}

static int
op_stop(struct agent *a, struct vm *vm, struct nq_error *err)
{
	(void)err;
	do_stop(a, vm);
	return 0;
}

static int
op_restart(struct agent *a, struct vm *vm, struct nq_error *err)
{
	do_stop(a, vm);
	return do_start(a, vm, err);
}

/* Claim id, run fn on a copy outside the lock, write the copy back. */
static int
with_vm(struct agent *a, const char *id, vm_op_fn fn, json_t **ret, struct nq_error *err)
{
	struct vm_table *t = a->vms;
	struct unpin owed[1];
	struct vm *vm, w;
	size_t n = 0;
	int r;

	pthread_mutex_lock(&t->lock);
	vm = claim(t, id);
	if (!vm) {
		pthread_mutex_unlock(&t->lock);
		return nq_error_setr(err, -ENOENT, "not_found", "id", "no VM %s on this host", id);
	}
	w = *vm;
	pthread_mutex_unlock(&t->lock);

	r = fn(a, &w, err);

	pthread_mutex_lock(&t->lock);
	release(t, vm, &w);
	settle(vm, owed, &n);
	if (r >= 0)
		*ret = vm_json(vm);
	pthread_mutex_unlock(&t->lock);
	pay_unpins(a, owed, n);
	return r;
}

int
vms_start(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_start, ret, err);
}

int
vms_stop(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_stop, ret, err);
}

int
vms_restart(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_restart, ret, err);
}

/* Never waits for a busy VM: it is reported as it was when its operation
 * began. */
int
vms_get(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	struct vm_table *t = a->vms;
	struct unpin owed[1];
	struct vm *vm;
	size_t n = 0;
	int r = 0;

	pthread_mutex_lock(&t->lock);
	vm = find(t, id);
	if (!vm || vm->creating) {
		r = nq_error_setr(err, -ENOENT, "not_found", "id", "no VM %s on this host", id);
	} else {
		settle(vm, owed, &n);
		*ret = vm_json(vm);
	}
	pthread_mutex_unlock(&t->lock);
	pay_unpins(a, owed, n);
	return r;
}

int
vms_delete(struct agent *a, const char *id, struct nq_error *err)
{
	struct vm_table *t = a->vms;
	char name[NQ_UUID_LEN + 16];
	struct vm *vm, w;
	int r = 0;

	pthread_mutex_lock(&t->lock);
	vm = claim(t, id);
	if (!vm) {
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	w = *vm;
	pthread_mutex_unlock(&t->lock);

	do_stop(a, &w);

	pthread_mutex_lock(&t->lock);
	snprintf(name, sizeof name, "%s/api.sock", id);
	unlinkat(t->dirfd, name, 0);
	snprintf(name, sizeof name, "%s/console.log", id);
	unlinkat(t->dirfd, name, 0);
	snprintf(name, sizeof name, "%s/serial.log", id);
	unlinkat(t->dirfd, name, 0);
	unlinkat(t->dirfd, id, AT_REMOVEDIR);
	snprintf(name, sizeof name, "%s.json", id);
	if (unlinkat(t->dirfd, name, 0) < 0 && errno != ENOENT)
		r = nq_error_setr(err, -errno, "io_error", NULL,
			"cannot delete the VM record: %s", strerror(errno));
	for (size_t i = 0; i < VM_MAX; i++)
		if (t->v[i] == vm)
			t->v[i] = NULL;
	free(vm);
	/* Waiters for this id look it up again and find nothing. */
	pthread_cond_broadcast(&t->idle);
	pthread_mutex_unlock(&t->lock);
	log_info("VM deleted id=%s", id);
	return r;
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
			settle(t->v[i], owed, &n);
	pthread_mutex_unlock(&t->lock);
	pay_unpins(a, owed, n);
}

/* Never waits for a busy VM: see vms_get. */
json_t *
vms_list(struct agent *a)
{
	struct vm_table *t = a->vms;
	struct unpin owed[VM_MAX];
	json_t *arr = json_array();
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < VM_MAX; i++) {
		struct vm *vm = t->v[i];
		if (!vm || vm->creating)
			continue;
		settle(vm, owed, &n);
		json_array_append_new(arr, vm_json(vm));
	}
	pthread_mutex_unlock(&t->lock);
	pay_unpins(a, owed, n);
	return arr;
}

static bool
has_id(const char (*ids)[NQ_UUID_LEN + 1], size_t n, const char *id)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(ids[i], id))
			return true;
	return false;
}

unsigned long long
vms_boot_ticks(void)
{
	struct timespec ts;
	long hz = sysconf(_SC_CLK_TCK);

	clock_gettime(CLOCK_BOOTTIME, &ts);
	hz = hz > 0 ? hz : 100;
	return (unsigned long long)ts.tv_sec * (unsigned long long)hz +
	       (unsigned long long)ts.tv_nsec / (1000000000ULL / (unsigned long long)hz) + 1;
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
		vm = claim(t, id);
		if (vm) {
			w = *vm;
			pthread_mutex_unlock(&t->lock);
			if ((w.up || w.pinned) && w.proc.starttime <= before)
				end_lost(a, &w);
			pthread_mutex_lock(&t->lock);
			release(t, vm, &w);
		}
		pthread_mutex_unlock(&t->lock);
	}
}
