/* The agent's held leases (leases.h): acquire before a VMM starts, a
 * renewal thread, a fencer thread, release.
 *
 * Locking: ls->lock guards the table and is never held across share I/O
 * (every lease file access is a deadline_run, mounts/deadline.h) nor
 * across a call into the VM table. The VM table may call in here with its
 * own lock held (order: VM table, then leases).
 *
 * Fencing is decided by the fencer alone, from the monotonic time of the
 * last renewal that succeeded: the renewal thread may hang in a share's
 * I/O for a whole deadline without delaying the kill. */
#include "agent/storage/leases.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/macro.h"
#include "agent/mounts/deadline.h"
#include "agent/storage/leases_internal.h"
#include "agent/storage/volumes.h"
#include "agent/vmm/vms.h"

static struct lease_entry *
find(struct leases *ls, const char *vm_id)
{
	for (size_t i = 0; i < VM_MAX; i++)
		if (ls->e[i].used && !strcmp(ls->e[i].vm_id, vm_id))
			return &ls->e[i];
	return NULL;
}

static struct lease_entry *
find_volume(struct leases *ls, const char *volume_id)
{
	for (size_t i = 0; i < VM_MAX; i++)
		if (ls->e[i].used && !strcmp(ls->e[i].volume_id, volume_id))
			return &ls->e[i];
	return NULL;
}

static struct lease_entry *
slot(struct leases *ls)
{
	for (size_t i = 0; i < VM_MAX; i++)
		if (!ls->e[i].used)
			return &ls->e[i];
	return NULL;
}

const char *
leases_agent_id(const struct leases *ls)
{
	return ls->agent_id;
}

/* An op on e's lease file (ls->lock held). */
void
lease_op_init(const struct leases *ls, const struct lease_entry *e, struct lease_op *op)
{
	memset(op, 0, sizeof *op);
	snprintf(op->dir, sizeof op->dir, "%s", e->dir);
	snprintf(op->name, sizeof op->name, "%s", e->name);
	snprintf(op->tmp, sizeof op->tmp, "%s.%s.tmp", e->name, ls->agent_id);
	memcpy(op->mine.agent_id, ls->agent_id, sizeof op->mine.agent_id);
	memcpy(op->mine.host_name, ls->host_name, sizeof op->mine.host_name);
	memcpy(op->mine.vm_id, e->vm_id, sizeof op->mine.vm_id);
	memcpy(op->mine.volume_id, e->volume_id, sizeof op->mine.volume_id);
	op->lease_seconds = ls->lease_seconds;
	op->adopted = e->adopted;
}

static int
entry_fill(struct lease_entry *e, const struct storage_kind_ops *k, const char *vm_id,
	const char *volume_id, const char *rootfs)
{
	char path[sizeof e->dir];

	if ((size_t)snprintf(path, sizeof path, "%s", rootfs) >= sizeof path)
		return -ENAMETOOLONG;
	memset(e, 0, sizeof *e);
	snprintf(e->dir, sizeof e->dir, "%s", dirname(path));
	volumes_lease_name(k, volume_id, e->name, sizeof e->name);
	snprintf(e->vm_id, sizeof e->vm_id, "%s", vm_id);
	snprintf(e->volume_id, sizeof e->volume_id, "%s", volume_id);
	return 0;
}

static int
refuse(const struct lease_op *op, int r, struct nq_error *err)
{
	long long left = (op->d.held_until_ms - lease_now_ms() + 999) / 1000;

	if (r == LEASE_ACQ_RACE)
		return nq_error_setr(err, -EBUSY, "volume_leased", "volume_id",
			"volume %s: another host is taking or renewing its lease right "
			"now; try again in a few seconds",
			op->mine.volume_id);
	if (op->d.corrupt)
		return nq_error_setr(err, -EBUSY, "volume_leased", "volume_id",
			"volume %s has a corrupt lease file (%s); it is treated as held "
			"for %lld more seconds",
			op->mine.volume_id,
			op->seen.valid ? "its expiry is too far in the future or it "
					 "names another volume"
				       : op->seen.why,
			left > 0 ? left : 1);
	/* A revert holds the lease under the volume's own id. */
	if (!strcmp(op->seen.l.vm_id, op->seen.l.volume_id))
		return nq_error_setr(err, -EBUSY, "volume_leased", "volume_id",
			"volume %s is being reverted by host %s (its lease is held for "
			"%lld more seconds); try again when that ends",
			op->mine.volume_id, op->seen.l.host_name, left > 0 ? left : 1);
	return nq_error_setr(err, -EBUSY, "volume_leased", "volume_id",
		"volume %s is leased by host %s for %lld more seconds; it may still be "
		"running there",
		op->mine.volume_id, op->seen.l.host_name, left > 0 ? left : 1);
}

static int
check_local(struct leases *ls, const char *vm_id, const char *volume_id,
	struct nq_error *err)
{
	struct lease_entry *e = find_volume(ls, volume_id);

	if (e && strcmp(e->vm_id, vm_id) && !e->fenced && !strcmp(e->vm_id, volume_id))
		return nq_error_setr(err, -EBUSY, "volume_leased", "volume_id",
			"volume %s is being reverted on this host", volume_id);
	if (e && strcmp(e->vm_id, vm_id) && !e->fenced)
		return nq_error_setr(err, -EBUSY, "volume_leased", "volume_id",
			"volume %s is leased by VM %s on this host", volume_id, e->vm_id);
	if ((e = find(ls, vm_id)))
		e->used = false; /* a fenced or stale entry of this VM */
	if (!slot(ls))
		return nq_error_setr(err, -ENOSPC, "conflict", NULL, "too many leases");
	return 0;
}

int
leases_acquire(struct agent *a, const struct storage_kind_ops *k, const char *vm_id,
	const char *volume_id, const char *rootfs, struct nq_error *err)
{
	struct leases *ls = a->leases;
	struct lease_entry e, *s;
	struct lease_op op;
	int r;

	if (!k->shared || !ls)
		return 0;
	if ((r = entry_fill(&e, k, vm_id, volume_id, rootfs)) < 0)
		return nq_error_setr(err, r, "io_error", NULL, "volume path too long");
	pthread_mutex_lock(&ls->lock);
	r = check_local(ls, vm_id, volume_id, err);
	lease_op_init(ls, &e, &op);
	pthread_mutex_unlock(&ls->lock);
	if (r < 0)
		return r;
	r = deadline_run_patient(e.dir, lease_op_acquire, &op, sizeof op,
		(int)a->cfg.probe_timeout * 1000);
	if (r == LEASE_ACQ_HELD || r == LEASE_ACQ_RACE) {
		log_info("lease refused vm_id=%s volume_id=%s held_by=%s corrupt=%s",
			vm_id, volume_id, op.seen.valid ? op.seen.l.agent_id : "-",
			op.d.corrupt ? "yes" : "no");
		if (op.d.corrupt)
			log_warn("corrupt lease file volume_id=%s why=%s", volume_id,
				op.seen.valid ? "expiry out of bounds" : op.seen.why);
		return refuse(&op, r, err);
	}
	if (r == -EBUSY || r == -ETIMEDOUT)
		return nq_error_setr(err, r, "smb_timeout", "volume_id",
			"cannot take the lease of volume %s: the share does not answer",
			volume_id);
	if (r == -ENOSPC || r == -EDQUOT)
		return nq_error_setr(err, r, "no_space", "volume_id",
			"cannot take the lease of volume %s: the share is full", volume_id);
	if (r < 0)
		return nq_error_setr(err, r, "io_error", "volume_id",
			"cannot take the lease of volume %s: %s", volume_id, strerror(-r));
	pthread_mutex_lock(&ls->lock);
	s = slot(ls);
	*s = e;
	s->used = true;
	s->epoch = ++ls->epoch;
	s->last_ok_mono = op.t0_mono_ms;
	s->expires_ms = op.mine.expires_at_ms;
	pthread_mutex_unlock(&ls->lock);
	log_info("lease taken vm_id=%s volume_id=%s generation=%lld expires_at_ms=%lld",
		vm_id, volume_id, op.written_gen, op.mine.expires_at_ms);
	return 0;
}

void
leases_set_proc(struct agent *a, const char *vm_id, const struct vmm_proc *p)
{
	struct leases *ls = a->leases;
	struct lease_entry *e;

	if (!ls)
		return;
	pthread_mutex_lock(&ls->lock);
	if ((e = find(ls, vm_id)))
		e->proc = *p;
	pthread_mutex_unlock(&ls->lock);
}

void
leases_adopt(struct agent *a, const struct storage_kind_ops *k, const char *vm_id,
	const char *volume_id, const char *rootfs, const struct vmm_proc *p)
{
	struct leases *ls = a->leases;
	struct lease_entry e, *s;

	if (!k->shared || !ls || entry_fill(&e, k, vm_id, volume_id, rootfs) < 0)
		return;
	pthread_mutex_lock(&ls->lock);
	if (!find(ls, vm_id) && (s = slot(ls))) {
		*s = e;
		s->used = s->adopted = true;
		s->epoch = ++ls->epoch;
		s->proc = *p;
		s->last_ok_mono = s->adopted_mono = lease_mono_ms();
	}
	pthread_mutex_unlock(&ls->lock);
}

void
leases_release(struct agent *a, const char *vm_id)
{
	struct leases *ls = a->leases;
	struct lease_entry *e;
	struct lease_op op;
	int r;

	if (!ls)
		return;
	pthread_mutex_lock(&ls->lock);
	e = find(ls, vm_id);
	if (!e || e->fenced) {
		/* Fenced: the share may be unreachable; the lease expires. */
		pthread_mutex_unlock(&ls->lock);
		return;
	}
	lease_op_init(ls, e, &op);
	e->used = false;
	pthread_mutex_unlock(&ls->lock);
	/* Same key as the renewals: waits for one in flight. */
	r = deadline_run(op.dir, lease_op_release, &op, sizeof op,
		(int)a->cfg.probe_timeout * 1000);
	if (r < 0)
		log_warn("cannot release the lease vm_id=%s volume_id=%s err=%s; it "
			 "expires by itself",
			vm_id, op.mine.volume_id, strerror(-r));
	else
		log_info("lease released vm_id=%s volume_id=%s", vm_id, op.mine.volume_id);
}

bool
leases_fenced(struct agent *a, const char *vm_id)
{
	struct leases *ls = a->leases;
	struct lease_entry *e;
	bool f;

	if (!ls)
		return false;
	pthread_mutex_lock(&ls->lock);
	e = find(ls, vm_id);
	f = e && e->fenced;
	pthread_mutex_unlock(&ls->lock);
	return f;
}

void
leases_forget(struct agent *a, const char *vm_id)
{
	struct leases *ls = a->leases;
	struct lease_entry *e;

	if (!ls)
		return;
	pthread_mutex_lock(&ls->lock);
	if ((e = find(ls, vm_id)) && e->fenced)
		e->used = false;
	pthread_mutex_unlock(&ls->lock);
}

const char *
leases_state(struct agent *a, const char *vm_id, long long *ret_expires)
{
	struct leases *ls = a->leases;
	struct lease_entry *e;
	const char *s = "none";

	if (!ls)
		return s;
	pthread_mutex_lock(&ls->lock);
	e = find(ls, vm_id);
	if (e && (e->fenced || e->lost)) {
		s = "lost";
	} else if (e) {
		s = "held"; /* adopted and not renewed yet: expiry unknown */
		*ret_expires = e->expires_ms;
	}
	pthread_mutex_unlock(&ls->lock);
	return s;
}
