/* The table of volume operations in progress: see inflight.h. Small and
 * fixed, scanned under one lock; waits are on one condition variable. */
#include "agent/storage/inflight.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/validate.h"

static pthread_mutex_t inflight_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inflight_done = PTHREAD_COND_INITIALIZER;
static unsigned long inflight_seq;
static struct {
	char id[NQ_UUID_LEN + 1];
	unsigned long seq;
	bool deleting;
	bool cancel;
} inflight[INFLIGHT_MAX];

static struct timespec
inflight_deadline(unsigned wait_secs)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += wait_secs;
	return until;
}

/* Under the lock: whether an entry for id matches (deleting, seq < below). */
static bool
inflight_find_locked(const char *id, bool deleting, unsigned long below)
{
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (inflight[i].deleting == deleting && inflight[i].seq < below &&
			!strcmp(inflight[i].id, id))
			return true;
	return false;
}

int
inflight_begin(const char *id, bool deleting, unsigned wait_secs, unsigned long *ret_seq)
{
	struct timespec until = inflight_deadline(wait_secs);
	int r = -EBUSY;

	pthread_mutex_lock(&inflight_lock);
	while (!deleting && inflight_find_locked(id, true, ULONG_MAX))
		if (pthread_cond_timedwait(&inflight_done, &inflight_lock, &until) ==
			ETIMEDOUT)
			goto out;
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (!inflight[i].id[0]) {
			snprintf(inflight[i].id, sizeof inflight[i].id, "%s", id);
			inflight[i].seq = *ret_seq = ++inflight_seq;
			inflight[i].deleting = deleting;
			inflight[i].cancel = false;
			r = 0;
			break;
		}
out:
	pthread_mutex_unlock(&inflight_lock);
	return r;
}

void
inflight_end(unsigned long seq)
{
	pthread_mutex_lock(&inflight_lock);
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (inflight[i].seq == seq && inflight[i].id[0])
			inflight[i].id[0] = '\0';
	pthread_cond_broadcast(&inflight_done);
	pthread_mutex_unlock(&inflight_lock);
}

bool
inflight_has(const char *id)
{
	bool found;

	pthread_mutex_lock(&inflight_lock);
	found = inflight_find_locked(id, false, ULONG_MAX) ||
		inflight_find_locked(id, true, ULONG_MAX);
	pthread_mutex_unlock(&inflight_lock);
	return found;
}

bool
inflight_cancelled(void *seqp)
{
	unsigned long seq = *(unsigned long *)seqp;
	bool c = false;

	pthread_mutex_lock(&inflight_lock);
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (inflight[i].seq == seq && inflight[i].id[0])
			c = inflight[i].cancel;
	pthread_mutex_unlock(&inflight_lock);
	return c;
}

void
inflight_cancel_wait(const char *id, unsigned long seq, unsigned wait_secs)
{
	struct timespec until = inflight_deadline(wait_secs);
	bool found = false;

	pthread_mutex_lock(&inflight_lock);
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (!inflight[i].deleting && inflight[i].seq < seq &&
			!strcmp(inflight[i].id, id))
			inflight[i].cancel = found = true;
	if (found)
		log_info("cancelling the creation of volume_id=%s", id);
	while (inflight_find_locked(id, false, seq))
		if (pthread_cond_timedwait(&inflight_done, &inflight_lock, &until) ==
			ETIMEDOUT)
			break;
	pthread_mutex_unlock(&inflight_lock);
}
