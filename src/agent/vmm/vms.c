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
 * vm_settle() leaves it to the operation. A VM that vms_create has reserved
 * but not yet started is not listed. `pinned` changes only on the copy an
 * operation owns or under the lock, so every pin has exactly one unpin. */
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
#include "agent/vmm/store.h"
#include "agent/vmm/vmm.h"
#include "agent/vmm/vms_internal.h"

/* The generation of the VM table as GET /v1/vms shows it: bumped on every
 * change a client can see (an operation ends, a VMM exits, a VM is
 * forgotten). It starts at the wall clock in ms, so an agent restart
 * never repeats a generation a client saw before. */
static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	unsigned long long gen;
	bool stopping;
} G = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, false };

static void
gen_init_locked(void)
{
	struct timespec ts;

	if (G.gen)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	G.gen = (unsigned long long)ts.tv_sec * 1000 +
		(unsigned long long)ts.tv_nsec / 1000000;
}

void
vms_generation_bump(void)
{
	pthread_mutex_lock(&G.lock);
	gen_init_locked();
	G.gen++;
	pthread_cond_broadcast(&G.changed);
	pthread_mutex_unlock(&G.lock);
}

unsigned long long
vms_generation_wait(unsigned long long since, unsigned timeout_ms)
{
	struct timespec until;
	unsigned long long g;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&G.lock);
	gen_init_locked();
	while (G.gen == since && !G.stopping && timeout_ms > 0)
		if (pthread_cond_timedwait(&G.changed, &G.lock, &until) == ETIMEDOUT)
			break;
	g = G.gen;
	pthread_mutex_unlock(&G.lock);
	return g;
}

bool
vms_generation_stopping(void)
{
	bool r;

	pthread_mutex_lock(&G.lock);
	r = G.stopping;
	pthread_mutex_unlock(&G.lock);
	return r;
}

void
vms_generation_stop(void)
{
	pthread_mutex_lock(&G.lock);
	G.stopping = true;
	pthread_cond_broadcast(&G.changed);
	pthread_mutex_unlock(&G.lock);
}

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

struct vm *
vm_find(struct vm_table *t, const char *id)
{
	for (size_t i = 0; i < VM_MAX; i++)
		if (t->v[i] && !strcmp(t->v[i]->c.id, id))
			return t->v[i];
	return NULL;
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
struct vm *
vm_claim(struct vm_table *t, const char *id)
{
	struct vm *vm;

	while ((vm = vm_find(t, id)) && vm->busy)
		pthread_cond_wait(&t->idle, &t->lock);
	if (vm) {
		vm->up = vm_running(vm);
		vm->busy = true;
	}
	return vm;
}

/* Under the lock: the operation's copy w becomes the VM again. */
void
vm_release(struct vm_table *t, struct vm *vm, const struct vm *w)
{
	*vm = *w;
	vm->busy = false;
	vm->creating = false;
	pthread_cond_broadcast(&t->idle);
	vms_generation_bump();
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
	if (vm_find(t, c->id)) {
		pthread_mutex_unlock(&t->lock);
		return nq_error_set(err, "already_exists", "id", "VM %s already exists",
			c->id);
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
		r = vm_do_start(a, &w, err);
	else if ((r = vm_pin_rootfs(a, &w, err)) >= 0)
		vm_unpin_rootfs(a, &w);
	if (r >= 0 && (r = vm_save(a, &w)) < 0) {
		vm_do_stop(a, &w);
		nq_error_setr(err, r, "io_error", NULL, "cannot record the VM: %s",
			strerror(-r));
	}

	pthread_mutex_lock(&t->lock);
	if (r < 0) {
		/* Nobody frees a busy VM but its owner: slot still holds it. */
		t->v[slot] = NULL;
		pthread_cond_broadcast(&t->idle);
	} else {
		vm_release(t, vm, &w);
		vm_settle(a, vm, owed, &n);
		*ret = vm_json(a, vm);
		TAKE_PTR(vm);
	}
	pthread_mutex_unlock(&t->lock);
	vm_pay_unpins(a, owed, n);
	return r < 0 ? r : 0;
}

typedef int (*vm_op_fn)(struct agent *a, struct vm *vm, const void *arg,
	struct nq_error *err);

static int
op_start(struct agent *a, struct vm *vm, const void *arg, struct nq_error *err)
{
	(void)arg;
	return vm_do_start(a, vm, err);
}

static int
op_stop(struct agent *a, struct vm *vm, const void *arg, struct nq_error *err)
{
	(void)arg, (void)err;
	vm_do_stop(a, vm);
	return 0;
}

static int
op_poweroff(struct agent *a, struct vm *vm, const void *arg, struct nq_error *err)
{
	(void)arg, (void)err;
	vm_do_poweroff(a, vm);
	return 0;
}

static int
op_shutdown(struct agent *a, struct vm *vm, const void *arg, struct nq_error *err)
{
	(void)err;
	vm_do_shutdown(a, vm, *(const unsigned *)arg);
	return 0;
}

static int
op_restart(struct agent *a, struct vm *vm, const void *arg, struct nq_error *err)
{
	(void)arg;
	vm_do_stop(a, vm);
	return vm_do_start(a, vm, err);
}

/* Claim id, run fn on a copy outside the lock, write the copy back. */
static int
with_vm(struct agent *a, const char *id, vm_op_fn fn, const void *arg, json_t **ret,
	struct nq_error *err)
{
	struct vm_table *t = a->vms;
	struct unpin owed[1];
	struct vm *vm, w;
	size_t n = 0;
	int r;

	pthread_mutex_lock(&t->lock);
	vm = vm_claim(t, id);
	if (!vm) {
		pthread_mutex_unlock(&t->lock);
		return nq_error_setr(err, -ENOENT, "not_found", "id",
			"no VM %s on this host", id);
	}
	w = *vm;
	pthread_mutex_unlock(&t->lock);

	r = fn(a, &w, arg, err);

	pthread_mutex_lock(&t->lock);
	vm_release(t, vm, &w);
	vm_settle(a, vm, owed, &n);
	if (r >= 0)
		*ret = vm_json(a, vm);
	pthread_mutex_unlock(&t->lock);
	vm_pay_unpins(a, owed, n);
	return r;
}

int
vms_start(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_start, NULL, ret, err);
}

int
vms_stop(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_stop, NULL, ret, err);
}

int
vms_poweroff(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_poweroff, NULL, ret, err);
}

int
vms_shutdown(struct agent *a, const char *id, unsigned timeout_s, json_t **ret,
	struct nq_error *err)
{
	return with_vm(a, id, op_shutdown, &timeout_s, ret, err);
}

int
vms_restart(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_restart, NULL, ret, err);
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
	vm = vm_find(t, id);
	if (!vm || vm->creating) {
		r = nq_error_setr(err, -ENOENT, "not_found", "id", "no VM %s on this host",
			id);
	} else {
		vm_settle(a, vm, owed, &n);
		*ret = vm_json(a, vm);
	}
	pthread_mutex_unlock(&t->lock);
	vm_pay_unpins(a, owed, n);
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
	vm = vm_claim(t, id);
	if (!vm) {
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	w = *vm;
	pthread_mutex_unlock(&t->lock);

	vm_do_stop(a, &w);

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
	vms_generation_bump();
	pthread_mutex_unlock(&t->lock);
	log_info("VM deleted id=%s", id);
	return r;
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
		vm_settle(a, vm, owed, &n);
		json_array_append_new(arr, vm_json(a, vm));
	}
	pthread_mutex_unlock(&t->lock);
	vm_pay_unpins(a, owed, n);
	return arr;
}

unsigned long long
vms_memory_committed(struct agent *a)
{
	struct vm_table *t = a->vms;
	struct unpin owed[VM_MAX];
	unsigned long long sum = 0;
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < VM_MAX; i++) {
		struct vm *vm = t->v[i];
		if (!vm)
			continue;
		vm_settle(a, vm, owed, &n);
		/* An operation in progress may be starting it: count it. */
		if (vm->up || vm->busy || (vm->creating && vm->c.start))
			sum += vm->c.memory_mib;
	}
	pthread_mutex_unlock(&t->lock);
	vm_pay_unpins(a, owed, n);
	return sum;
}
