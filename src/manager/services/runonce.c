/* See reconciler.h: the run-once lock and the stop-aware sleep shared by
 * the background loops. */
#include <errno.h>
#include <time.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/reconciler.h"

bool
runonce_check(struct manager *m)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	int r;
	bool held, was;

	pthread_mutex_lock(&lock);
	r = db_try_advisory_lock(m->db, RUNONCE_LOCK_KEY);
	held = r == 1;
	was = __atomic_exchange_n(&m->leader, held, __ATOMIC_RELAXED);
	if (held && !was)
		log_info("run-once lock taken: this manager runs the refresher, the "
			 "reconciler and HA");
	else if (!held && was)
		log_warn("run-once lock lost err=%d: another manager runs the background "
			 "work",
			r);
	pthread_mutex_unlock(&lock);
	return held;
}

bool
manager_sleep(struct manager *m, unsigned ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&m->refresh_lock);
	while (!m->stopping)
		if (pthread_cond_timedwait(&m->refresh_cond, &m->refresh_lock, &until) ==
			ETIMEDOUT)
			break;
	pthread_mutex_unlock(&m->refresh_lock);
	return !__atomic_load_n(&m->stopping, __ATOMIC_RELAXED);
}
