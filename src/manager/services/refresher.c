/* Background status refresher: every refresh-interval seconds, heartbeat
 * the host (its row's last_seen, kinds and hypervisors), check each
 * backend's capacity with a short timeout and cache the result in the
 * registry. Listing reads the cache only, so a dead agent or server makes
 * a row `unreachable` without making the list slow; a server that comes
 * back turns `ok` at the next round without an operator. A check that
 * finds the backend unknown to the agent re-attaches it under the
 * backend's claim. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "manager/services/backend_hosts.h"
#include "manager/services/claims.h"
#include "manager/services/hosts.h"
#include "manager/services/reconciler.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/metrics.h"
#include "manager/services/storage.h"

const char *
storage_status_of(const char *code)
{
	static const struct {
		const char *code, *status;
	} map[] = {
		{ "agent_unavailable", "unreachable" },
		{ "smb_unreachable", "unreachable" },
		{ "smb_timeout", "unreachable" },
		{ "smb_auth_failed", "auth_failed" },
		{ "smb_cred_missing", "auth_failed" },
		{ "smb_access_denied", "access_denied" },
		{ "smb_share_not_found", "not_found" },
		{ "smb_not_writable", "not_writable" },
		{ "not_writable", "not_writable" },
		{ "no_space", "full" },
		{ "busy", "busy" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(map[i].code, code) == 0)
			return map[i].status;
	return "error";
}

void
storage_check_on(struct manager *m, const struct backend *b, const struct backend_env *env,
	struct backend_status *ret)
{
	struct backend_status st = { 0 };
	struct nq_error err = { 0 };
	struct timespec ts;
	int r;

	r = b->ops->capacity(env, b->id, b->cfg, false, &st.cap, &err);
	if (r == -ENOENT) {
		/* The agent lost the mount. Re-establish it under the backend's
		 * claim, and only if the backend still exists; an operation that
		 * holds the claim right now (a PATCH, a DELETE) decides instead. */
		char key[CLAIM_KEY_MAX];
		claim_key(key, "backend", b->id);
		if (claim_try_background(key)) {
			struct backend *cur = registry_get(m->reg, b->id);
			if (cur) {
				memset(&err, 0, sizeof err);
				r = cur->ops->capacity(env, cur->id, cur->cfg, true,
					&st.cap, &err);
				if (r >= 0)
					log_info("backend re-attached on the agent id=%s",
						b->id);
			}
			backend_unref(cur);
			claim_release(key);
		} else {
			nq_error_set(&err, "busy", NULL,
				"the backend is not attached on the "
				"agent; it is re-attached once the running operation ends");
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	st.checked_at = ts.tv_sec ? ts.tv_sec : 1;
	if (r >= 0) {
		snprintf(st.status, sizeof st.status, "ok");
		st.have_capacity = true;
	} else {
		snprintf(st.code, sizeof st.code, "%s",
			err.code[0] ? err.code : "agent_unavailable");
		snprintf(st.status, sizeof st.status, "%s", storage_status_of(st.code));
		snprintf(st.message, sizeof st.message, "%s", err.message);
	}
	*ret = st;
}

void
storage_refresh_one(struct manager *m, struct backend *b)
{
	struct backend_status st = { 0 };

	backend_hosts_refresh(m, b, &st);
	if (st.code[0])
		metrics_probe_failure(b->id, b->ops->kind, st.code);
	registry_set_status(m->reg, b->id, &st);
}

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
		/* Run-once work: only the manager holding the lock refreshes. */
		bool leader = runonce_check(m);
		if (leader) {
			hosts_heartbeat_all(m);
			backend_hosts_catch_up(m);
		}
		if (leader && registry_snapshot(m->reg, &items, &n) >= 0) {
			for (size_t i = 0;
				i < n && !__atomic_load_n(&m->stopping, __ATOMIC_RELAXED);
				i++)
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
