#include "agent/vmm/vms_snapshot.h"

#include <string.h>

#include "common/debug_gate.h"
#include "common/log.h"
#include "agent/storage/volumes_copy.h"
#include "agent/vmm/vms_internal.h"

/* Pause, copy, resume (the resume also when the copy failed). */
static int
snapshot_running(struct agent *a, struct vm *w, const char *volume_id,
	struct volume_info *ret, struct nq_error *err)
{
	const struct vmm_ops *ops = vmm_find(w->c.hypervisor);
	struct nq_error rerr = { 0 };
	struct vmm_spec spec;
	int r, rr;

	if (!ops || !ops->pause || !ops->resume)
		return nq_error_set(err, "vmm_failed", NULL,
			"the %s driver cannot pause a running VM", w->c.hypervisor);
	vm_fill_spec(a, w, &spec);
	r = ops->pause(&spec, err);
	if (r < 0)
		return r;
	log_info("VM paused for a snapshot id=%s volume_id=%s", w->c.id, volume_id);
	debug_gate("snapshot-paused", NULL, NULL);
	r = volumes_copy(a, w->c.backend_kind, w->c.backend_id, volume_id, w->c.volume_id,
		false, ret, err);
	rr = ops->resume(&spec, &rerr);
	if (rr < 0) {
		log_error("cannot resume VM after a snapshot id=%s code=%s: %s", w->c.id,
			rerr.code, rerr.message);
		if (r >= 0) {
			*err = rerr;
			return rr;
		}
	} else {
		log_info("VM resumed after a snapshot id=%s ok=%d", w->c.id, r >= 0);
	}
	return r;
}

int
vms_snapshot(struct agent *a, const char *id, const char *volume_id, bool *ret_paused,
	struct volume_info *ret, struct nq_error *err)
{
	struct vm_table *t = a->vms;
	struct unpin owed[1];
	struct vm *vm, w;
	size_t n = 0;
	bool running;
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

	running = vm_running(&w);
	if (running)
		r = snapshot_running(a, &w, volume_id, ret, err);
	else
		r = volumes_copy(a, w.c.backend_kind, w.c.backend_id, volume_id,
			w.c.volume_id, false, ret, err);

	pthread_mutex_lock(&t->lock);
	vm_release(t, vm, &w);
	vm_settle(a, vm, owed, &n);
	pthread_mutex_unlock(&t->lock);
	vm_pay_unpins(a, owed, n);
	if (r >= 0)
		*ret_paused = running;
	return r;
}

bool
vms_volume_in_use(struct agent *a, const char *volume_id)
{
	struct vm_table *t = a->vms;
	bool used = false;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < VM_MAX && !used; i++) {
		struct vm *vm = t->v[i];
		used = vm && !strcmp(vm->c.volume_id, volume_id) &&
		       (vm->busy || vm_running(vm));
	}
	pthread_mutex_unlock(&t->lock);
	return used;
}
