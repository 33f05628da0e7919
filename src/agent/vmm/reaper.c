/* The VM reaper: a thread that looks at every VM a few times a second, so
 * a VMM that exits by itself (the guest powered off, or it crashed) is
 * reaped at once, its end recorded in the VM's last_exit and its mount
 * released, whether or not anyone asks for the VM. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/vmm/vms.h"

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool started, stopping;
	unsigned interval_ms;
	struct agent *a;
} R = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void *
reaper(void *arg)
{
	struct timespec until;
	(void)arg;

	pthread_mutex_lock(&R.lock);
	while (!R.stopping) {
		pthread_mutex_unlock(&R.lock);
		vms_settle_all(R.a);
		vmm_child_reap_all();
		pthread_mutex_lock(&R.lock);
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += (long)R.interval_ms * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		if (!R.stopping)
			pthread_cond_timedwait(&R.wake, &R.lock, &until);
	}
	pthread_mutex_unlock(&R.lock);
	return NULL;
}

int
vms_reaper_start(struct agent *a, unsigned interval_ms)
{
	pthread_condattr_t ca;
	int r;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&R.wake, &ca);
	pthread_condattr_destroy(&ca);
	R.a = a;
	R.interval_ms = interval_ms ? interval_ms : 500;
	R.stopping = false;
	r = pthread_create(&R.thread, NULL, reaper, NULL);
	if (r != 0)
		return -r;
	R.started = true;
	return 0;
}

void
vms_reaper_stop(void)
{
	if (!R.started)
		return;
	pthread_mutex_lock(&R.lock);
	R.stopping = true;
	pthread_cond_signal(&R.wake);
	pthread_mutex_unlock(&R.lock);
	pthread_join(R.thread, NULL);
	pthread_cond_destroy(&R.wake);
	R.started = false;
}

static void
exit_reason(const struct vmm_exit *e, char *buf, size_t sz)
{
	const char *sig = e->signal ? sigabbrev_np(e->signal) : NULL;

	if (e->fenced)
		snprintf(buf, sz, "%s", VM_FENCED_REASON);
	else if (e->shutdown == VMM_SHUTDOWN_GRACEFUL)
		snprintf(buf, sz, "shut down on request: the guest powered off in time");
	else if (e->shutdown == VMM_SHUTDOWN_FORCED)
		snprintf(buf, sz,
			"shut down on request: the guest did not power off"
			" by the deadline, so it was powered off");
	else if (!e->has_status)
		snprintf(buf, sz,
			"the VMM ended; its exit status is unknown "
			"(it was adopted after an agent restart)");
	else if (e->signal)
		snprintf(buf, sz, "%skilled by signal %d (SIG%s)",
			e->requested ? "stopped on request: " : "", e->signal,
			sig ? sig : "?");
	else if (e->code == 0)
		snprintf(buf, sz, "%s",
			e->requested ? "stopped on request"
				     : "the guest powered itself off");
	else if (e->cause[0])
		snprintf(buf, sz, "%s (exited with status %d)", e->cause, e->code);
	else
		snprintf(buf, sz, "exited with status %d", e->code);
}

json_t *
vmm_exit_json(const struct vmm_exit *e)
{
	char reason[320];

	if (!e->known)
		return json_null();
	exit_reason(e, reason, sizeof reason);
	return json_pack("{s:o, s:o, s:s, s:b, s:I, s:o}", "code",
		e->has_status && !e->signal ? json_integer(e->code) : json_null(),
		"signal", e->signal ? json_integer(e->signal) : json_null(), "reason",
		reason, "requested", e->requested, "at", (json_int_t)e->at, "shutdown",
		e->shutdown == VMM_SHUTDOWN_NONE
			? json_null()
			: json_string(e->shutdown == VMM_SHUTDOWN_GRACEFUL ? "graceful"
									   : "forced"));
}
