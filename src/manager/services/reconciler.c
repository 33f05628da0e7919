/* See reconciler.h. A supervisor thread lists the hosts every
 * --reconcile-interval and keeps one worker thread per host; a worker
 * whose host is gone ends, and the supervisor joins it. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/hostpool.h"
#include "manager/services/reconciler.h"

#define RECONCILE_HOSTS_MAX 256
#define LONG_POLL_SECONDS 10

struct worker {
	struct manager *m;
	char host_id[64];
	pthread_t thread;
	bool done; /* atomic: the thread has ended, join it */
};

struct reconciler {
	pthread_t thread;
	struct worker *w[RECONCILE_HOSTS_MAX];
};

/* One call: a long poll when we know the agent's generation, else a
 * plain list. 0 with *gen updated, or -errno with cause. */
static int
poll_once(struct worker *w, long long *gen, char *cause, size_t causesz)
{
	struct manager *m = w->m;
	struct agent_call_ext x = { .abort = &m->stopping };
	struct agent_reply rep = { 0 };
	struct nq_error err = { 0 };
	struct backend_env env;
	char path[96];
	long timeout;
	int r;

	r = hosts_env(m, w->host_id, &env, &err);
	if (r < 0)
		return r == -ENOENT ? -ENOENT : -EAGAIN;
	if (*gen >= 0)
		snprintf(path, sizeof path, "/v1/vms?wait=%d&since=%lld",
			LONG_POLL_SECONDS, *gen);
	else
		snprintf(path, sizeof path, "/v1/vms");
	timeout = (*gen >= 0 ? LONG_POLL_SECONDS * 1000L : 0) +
		  (long)(m->cfg.status_timeout_ms > 1000 ? m->cfg.status_timeout_ms : 1000);
	r = agent_call_ext(env.agent, "GET", path, NULL, 0, timeout, &x, &rep, &err);
	hosts_env_release(&env);
	if (r >= 0 && runonce_check(m))
		reconciler_apply(m, w->host_id, rep.json);
	agent_reply_release(&rep);
	if (r < 0) {
		snprintf(cause, causesz, "%s", err.message);
		*gen = -1;
		return r;
	}
	*gen = x.generation;
	return 0;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct manager *m = w->m;
	unsigned interval = m->cfg.reconcile_interval * 1000;
	long long gen = -1;
	char cause[256];

	while (!__atomic_load_n(&m->stopping, __ATOMIC_RELAXED)) {
		if (!__atomic_load_n(&m->leader, __ATOMIC_RELAXED)) {
			gen = -1;
			(void)manager_sleep(m, interval);
			continue;
		}
		int r = poll_once(w, &gen, cause, sizeof cause);
		if (r == -ENOENT)
			break; /* the host was removed */
		if (__atomic_load_n(&m->stopping, __ATOMIC_RELAXED))
			break;
		if (r < 0 && r != -EAGAIN)
			log_debug("reconciler: host=%s did not answer: %s", w->host_id,
				cause);
		/* An agent without long polls (no X-Generation), or a failure:
		 * poll again after the interval. A long poll that answered
		 * goes straight back, with a breath against a busy loop. */
		(void)manager_sleep(m, r >= 0 && gen >= 0 ? 100 : interval);
	}
	__atomic_store_n(&w->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Join finished workers; start one for every host without one. */
static void
supervise(struct reconciler *rc, struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };

	for (size_t i = 0; i < RECONCILE_HOSTS_MAX; i++)
		if (rc->w[i] && __atomic_load_n(&rc->w[i]->done, __ATOMIC_ACQUIRE)) {
			pthread_join(rc->w[i]->thread, NULL);
			free(rc->w[i]);
			rc->w[i] = NULL;
		}
	if (db_query(m->db, "SELECT id FROM hosts ORDER BY id", 0, NULL, &rows) < 0)
		return;
	for (unsigned k = 0; k < rows.nrows; k++) {
		const char *id = db_rows_get(&rows, k, 0);
		size_t i, slot = RECONCILE_HOSTS_MAX;
		for (i = 0; i < RECONCILE_HOSTS_MAX; i++) {
			if (rc->w[i] && !strcmp(rc->w[i]->host_id, id ?: ""))
				break;
			if (!rc->w[i] && slot == RECONCILE_HOSTS_MAX)
				slot = i;
		}
		if (!id || strlen(id) >= 64 || i < RECONCILE_HOSTS_MAX ||
			slot == RECONCILE_HOSTS_MAX)
			continue;
		struct worker *w = calloc(1, sizeof *w);
		if (!w)
			return;
		w->m = m;
		snprintf(w->host_id, sizeof w->host_id, "%s", id);
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			free(w);
			continue;
		}
		rc->w[slot] = w;
		log_debug("reconciler worker started host=%s", id);
	}
}

static void *
supervisor_main(void *arg)
{
	struct manager *m = arg;

	do {
		if (runonce_check(m))
			supervise(m->rec, m);
		/* Often, and cheaply: a host enrolled now gets its worker at once. */
	} while (manager_sleep(m, m->cfg.reconcile_interval < 2 ? 1000 : 2000));
	return NULL;
}

int
reconciler_start(struct manager *m)
{
	int r;

	m->rec = calloc(1, sizeof *m->rec);
	if (!m->rec)
		return -ENOMEM;
	r = pthread_create(&m->rec->thread, NULL, supervisor_main, m);
	if (r != 0) {
		free(m->rec);
		m->rec = NULL;
		return -r;
	}
	return 0;
}

void
reconciler_stop(struct manager *m)
{
	if (!m->rec)
		return;
	pthread_join(m->rec->thread, NULL);
	for (size_t i = 0; i < RECONCILE_HOSTS_MAX; i++)
		if (m->rec->w[i]) {
			pthread_join(m->rec->w[i]->thread, NULL);
			free(m->rec->w[i]);
		}
	free(m->rec);
	m->rec = NULL;
}
