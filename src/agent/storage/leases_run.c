/* The lease registry's life: the agent's identity, the renewal thread and
 * the fencer thread (leases.h, leases.c). */
#include "agent/storage/leases.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "agent/mounts/deadline.h"
#include "agent/storage/leases_internal.h"

#define FENCER_TICK_MS 100

int
leases_new(struct agent *a, struct leases **ret)
{
	struct leases *ls = calloc(1, sizeof *ls);
	pthread_condattr_t ca;

	if (!ls)
		return -ENOMEM;
	/* Who holds a lease: the agent's identity (identity.c, loaded
	 * before the leases). */
	if (!a->agent_id[0]) {
		free(ls);
		return -EINVAL;
	}
	snprintf(ls->agent_id, sizeof ls->agent_id, "%s", a->agent_id);
	snprintf(ls->host_name, sizeof ls->host_name, "%s", a->host_name);
	ls->lease_seconds = a->cfg.lease_seconds;
	ls->interval_ms = lease_interval_ms(ls->lease_seconds);
	ls->period_ms = lease_period_ms(ls->lease_seconds);
	pthread_mutex_init(&ls->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ls->wake, &ca);
	pthread_condattr_destroy(&ca);
	*ret = ls;
	return 0;
}

void
leases_free(struct leases *ls)
{
	if (!ls)
		return;
	pthread_cond_destroy(&ls->wake);
	pthread_mutex_destroy(&ls->lock);
	free(ls);
}

/* Under ls->lock: sleep ms unless stopping; false when stopping. */
static bool
nap(struct leases *ls, long long ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	if (!ls->stopping)
		pthread_cond_timedwait(&ls->wake, &ls->lock, &until);
	return !ls->stopping;
}

static void
renewed(struct leases *ls, const struct lease_op *op, unsigned long epoch, int r)
{
	struct lease_entry *e = NULL;

	for (size_t i = 0; i < VM_MAX && !e; i++)
		if (ls->e[i].used && ls->e[i].epoch == epoch)
			e = &ls->e[i];
	if (!e || e->fenced)
		return;
	if (r == 0) {
		e->last_ok_mono = op->t0_mono_ms;
		e->expires_ms = op->mine.expires_at_ms;
		e->adopted = false;
		if (op->reclaimed)
			log_warn("lease reclaimed vm_id=%s volume_id=%s: an expired lease "
				 "of host %s had replaced it (a late write after a "
				 "partition)",
				e->vm_id, e->volume_id, op->seen.l.host_name);
		if (op->in_place && !e->in_place)
			log_warn("lease renewed in place vm_id=%s volume_id=%s: the share is "
				 "full (no room for a new lease file); VMs keep running, "
				 "their writes fail until space is freed",
				e->vm_id, e->volume_id);
		else if (!op->in_place && e->in_place)
			log_info("lease renewed normally again vm_id=%s: the share has room",
				e->vm_id);
		e->in_place = op->in_place;
		log_debug("lease renewed vm_id=%s generation=%lld", e->vm_id,
			op->written_gen);
	} else if (r == -ESTALE) {
		log_warn("lease lost vm_id=%s volume_id=%s: %s", e->vm_id, e->volume_id,
			!op->seen.present ? "the lease file is gone"
			: e->adopted      ? "it expired while the agent was down"
					  : "another host holds it now");
		e->lost = true;
		pthread_cond_broadcast(&ls->wake);
	} else {
		log_warn("cannot renew the lease vm_id=%s volume_id=%s err=%s", e->vm_id,
			e->volume_id, strerror(-r));
	}
}

static void *
renewer(void *arg)
{
	struct agent *a = arg;
	struct leases *ls = a->leases;
	struct lease_op op;
	long long next = lease_mono_ms();

	pthread_mutex_lock(&ls->lock);
	do {
		/* Rounds start at a fixed rate, however long one took. */
		next += ls->period_ms;
		for (size_t i = 0; i < VM_MAX && !ls->stopping; i++) {
			struct lease_entry *e = &ls->e[i];
			unsigned long epoch = e->epoch;
			int r;

			if (!e->used || e->fenced || e->lost)
				continue;
			lease_op_init(ls, e, &op);
			pthread_mutex_unlock(&ls->lock);
			r = deadline_run(op.dir, lease_op_renew, &op, sizeof op,
				(int)ls->interval_ms);
			pthread_mutex_lock(&ls->lock);
			renewed(ls, &op, epoch, r);
		}
		if (next < lease_mono_ms())
			next = lease_mono_ms();
	} while (nap(ls, next - lease_mono_ms()));
	pthread_mutex_unlock(&ls->lock);
	return NULL;
}

/* Under ls->lock: the leases whose VMM must die now, marked fenced. */
static size_t
due(struct leases *ls, char (*ids)[NQ_UUID_LEN + 1], struct vmm_proc *procs)
{
	long long now = lease_mono_ms(), i2 = 2LL * ls->interval_ms;
	long long L = (long long)ls->lease_seconds * 1000;
	size_t n = 0;

	for (size_t i = 0; i < VM_MAX; i++) {
		struct lease_entry *e = &ls->e[i];
		long long at = e->last_ok_mono + L - i2;

		if (!e->used || e->fenced || e->proc.pid <= 0)
			continue;
		if (e->adopted)
			at = e->adopted_mono + (i2 < L - i2 ? i2 : L - i2);
		if (!e->lost && now < at)
			continue;
		e->fenced = true;
		memcpy(ids[n], e->vm_id, sizeof ids[n]);
		procs[n++] = e->proc;
	}
	return n;
}

static void *
fencer(void *arg)
{
	struct agent *a = arg;
	struct leases *ls = a->leases;
	static char ids[VM_MAX][NQ_UUID_LEN + 1];
	static struct vmm_proc procs[VM_MAX];

	pthread_mutex_lock(&ls->lock);
	do {
		size_t n = due(ls, ids, procs);

		if (!n)
			continue;
		pthread_mutex_unlock(&ls->lock);
		/* Kill first, all of them; record after. */
		for (size_t i = 0; i < n; i++) {
			if (vmm_proc_alive(&procs[i]))
				kill(procs[i].pid, SIGKILL);
			log_warn("VM fenced: its lease could not be renewed, VMM killed "
				 "id=%s pid=%d",
				ids[i], (int)procs[i].pid);
		}
		for (size_t i = 0; i < n; i++)
			vms_mark_fenced(a, ids[i]);
		pthread_mutex_lock(&ls->lock);
	} while (nap(ls, FENCER_TICK_MS));
	pthread_mutex_unlock(&ls->lock);
	return NULL;
}

int
leases_start(struct agent *a)
{
	struct leases *ls = a->leases;
	int r;

	ls->stopping = false;
	if ((r = pthread_create(&ls->fencer, NULL, fencer, a)) != 0)
		return -r;
	if ((r = pthread_create(&ls->renewer, NULL, renewer, a)) != 0) {
		pthread_mutex_lock(&ls->lock);
		ls->stopping = true;
		pthread_cond_broadcast(&ls->wake);
		pthread_mutex_unlock(&ls->lock);
		pthread_join(ls->fencer, NULL);
		return -r;
	}
	ls->started = true;
	log_info("leases agent_id=%s host_name=%s lease_seconds=%u renew_ms=%u "
		 "round_ms=%u",
		ls->agent_id, ls->host_name, ls->lease_seconds, ls->interval_ms,
		ls->period_ms);
	return 0;
}

void
leases_stop(struct agent *a)
{
	struct leases *ls = a->leases;

	if (!ls || !ls->started)
		return;
	pthread_mutex_lock(&ls->lock);
	ls->stopping = true;
	pthread_cond_broadcast(&ls->wake);
	pthread_mutex_unlock(&ls->lock);
	pthread_join(ls->fencer, NULL);
	pthread_join(ls->renewer, NULL);
	ls->started = false;
}
