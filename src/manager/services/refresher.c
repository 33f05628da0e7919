/* Background status refresher: every refresh-interval seconds, heartbeat
 * the host (its row's last_seen, kinds and hypervisors), check each
 * backend's capacity with a short timeout and cache the result in the
 * registry. Listing reads the cache only, so a dead agent or server makes
 * a row `unreachable` without making the list slow; a server that comes
 * back turns `ok` at the next round without an operator. */
#include <errno.h>
#include <time.h>

#include "manager/services/hosts.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/storage.h"

static void *
refresher_main(void *arg)
{
	struct manager *m = arg;

	pthread_mutex_lock(&m->refresh_lock);
	while (!m->stopping) {
		struct registry_item *items = NULL;
		size_t n = 0;

		m->refresh_now = false;
		pthread_mutex_unlock(&m->refresh_lock);
		struct nq_error herr = { 0 };
		if (hosts_heartbeat(m, NULL, &herr) < 0)
			log_debug("host heartbeat failed code=%s", herr.code);
		if (registry_snapshot(m->reg, &items, &n) >= 0) {
			for (size_t i = 0; i < n && !__atomic_load_n(&m->stopping, __ATOMIC_RELAXED); i++)
				storage_refresh_one(m, items[i].b);
			registry_items_free(items, n);
		}
		pthread_mutex_lock(&m->refresh_lock);

		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += m->cfg.refresh_interval;
		while (!m->stopping && !m->refresh_now) {
			if (pthread_cond_timedwait(&m->refresh_cond, &m->refresh_lock,
				    &until) == ETIMEDOUT)
				break;
		}
	}
	pthread_mutex_unlock(&m->refresh_lock);
	return NULL;
}

int
storage_refresher_start(struct manager *m)
{
	pthread_condattr_t ca;
	int r;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&m->refresh_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&m->refresh_lock, NULL);
	r = pthread_create(&m->refresher, NULL, refresher_main, m);
	if (r != 0)
		return -r;
	m->refresher_started = true;
	return 0;
}

void
storage_refresher_stop(struct manager *m)
{
	if (!m->refresher_started)
		return;
	pthread_mutex_lock(&m->refresh_lock);
	__atomic_store_n(&m->stopping, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&m->refresh_cond); /* the recoverer waits too */
	pthread_mutex_unlock(&m->refresh_lock);
	pthread_join(m->refresher, NULL);
	m->refresher_started = false;
}
