/* Rotation, removal, status and JSON of a backend across the hosts it is
 * attached on (backend_hosts.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/services/events.h"
#include "manager/services/backend_hosts.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/hosts_internal.h"
#include "manager/services/secrets.h"
#include "manager/services/storage.h"

#define REACH_TIMEOUT_MS 3000

static int
set_generation(struct manager *m, const char *bid, const char *hid, int gen)
{
	char g[16];
	const char *p[] = { bid, hid, g };

	snprintf(g, sizeof g, "%d", gen);
	return db_exec(m->db,
		"UPDATE backend_hosts SET secret_generation = $3 WHERE backend_id = $1"
		" AND host_id = $2",
		3, p, NULL);
}

static int
rotate_on(struct manager *m, const struct backend *b, const char *hid, const void *cfg,
	const struct secret *secret, struct nq_error *err)
{
	struct backend_env env = { 0 };
	int r = hosts_env(m, hid, &env, err);

	if (r < 0)
		return r;
	r = b->ops->rotate_secret(&env, b->id, cfg, secret, err);
	hosts_env_release(&env);
	return r;
}

/* The password reached host hid (ok) or will when it answers (deferred). */
static void
rotated_event(struct manager *m, const char *bid, const char *hid, const char *outcome,
	const char *cause)
{
	if (strcmp(outcome, "ok") != 0)
		log_info("backend rotation deferred id=%s host=%s", bid, hid);
	events_record(m, "api", "backend.rotated", "backend", bid, hid, outcome, cause);
}

int
backend_hosts_rotate(struct manager *m, const struct backend *b, const void *cfg,
	const struct secret *secret, struct nq_error *err)
{
	char ids[BACKEND_HOSTS_MAX][64], sid[96];
	size_t n = 0, first = 0;
	struct host_state hs;
	int gen = 0, r;

	if (backend_hosts_list(m, b->id, ids, &n) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (n == 0)
		snprintf(ids[n++], 64, "%s", HOST_LOCAL_ID);
	/* The first reachable host proves the new password. */
	while (first < n && hosts_get_state(m, ids[first], &hs) >= 0 &&
		!strcmp(hs.status, "unreachable"))
		first++;
	if (first == n)
		first = 0;
	r = rotate_on(m, b, ids[first], cfg, secret, err);
	if (r < 0)
		return r;
	secrets_id(sid, sizeof sid, "backend", b->id);
	r = secrets_put(m, sid, secret, &gen);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	(void)set_generation(m, b->id, ids[first], gen);
	rotated_event(m, b->id, ids[first], "ok", NULL);
	for (size_t i = 0; i < n; i++) {
		struct nq_error e = { 0 };
		if (i == first)
			continue;
		/* A host known to be down gets it when it returns (catch_up). */
		if (hosts_get_state(m, ids[i], &hs) >= 0 &&
			!strcmp(hs.status, "unreachable"))
			rotated_event(m, b->id, ids[i], "deferred",
				"the host is unreachable");
		else if (rotate_on(m, b, ids[i], cfg, secret, &e) >= 0) {
			(void)set_generation(m, b->id, ids[i], gen);
			rotated_event(m, b->id, ids[i], "ok", NULL);
		} else
			rotated_event(m, b->id, ids[i], "deferred", e.message);
	}
	return 0;
}

int
backend_hosts_detach_all(struct manager *m, const struct backend *b, struct nq_error *err)
{
	char ids[BACKEND_HOSTS_MAX][64], sid[96], name[64];
	size_t n = 0;
	int r;

	if (backend_hosts_list(m, b->id, ids, &n) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (n == 0)
		snprintf(ids[n++], 64, "%s", HOST_LOCAL_ID);
	/* Every host answers now, or nothing is touched: credentials are not
	 * left behind on a host we could not reach. The local host goes first
	 * below: its own failure stops the removal before any other host. */
	for (size_t i = 0; i < n; i++) {
		struct nq_error e = { 0 };
		if (strcmp(ids[i], HOST_LOCAL_ID) != 0 &&
			hosts_heartbeat_one(m, ids[i], REACH_TIMEOUT_MS, &e) < 0) {
			hosts_name(m, ids[i], name, sizeof name);
			return nq_error_setr(err, -EHOSTUNREACH, "host_unreachable", NULL,
				"host %s (%s) cannot be reached, so the backend cannot be"
				" detached there: %s",
				name[0] ? name : ids[i], ids[i], e.message);
		}
	}
	for (size_t i = 0; i < n; i++) {
		struct backend_env env = { 0 };
		const char *p[] = { b->id, ids[i] };
		r = hosts_env(m, ids[i], &env, err);
		if (r >= 0) {
			r = b->ops->destroy(&env, b->id, b->cfg, err);
			hosts_env_release(&env);
		}
		if (r < 0)
			return r;
		(void)db_exec(m->db,
			"DELETE FROM backend_hosts WHERE backend_id = $1 AND host_id = $2",
			2, p, NULL);
		log_info("backend detached id=%s host=%s", b->id, ids[i]);
		events_record(m, "api", "backend.detached", "backend", b->id, ids[i], "ok",
			NULL);
	}
	secrets_id(sid, sizeof sid, "backend", b->id);
	(void)secrets_delete(m, sid);
	return 0;
}

void
backend_hosts_catch_up(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };

	if (db_query(m->db,
		    "SELECT bh.backend_id, bh.host_id FROM backend_hosts bh"
		    " JOIN secrets s ON s.id = 'backend:' || bh.backend_id"
		    " JOIN hosts h ON h.id = bh.host_id"
		    " WHERE bh.secret_generation < s.generation AND h.unreachable_since = 0"
		    " AND h.last_seen > 0",
		    0, NULL, &rows) < 0)
		return;
	for (unsigned i = 0; i < rows.nrows; i++) {
		_cleanup_secret_ struct secret *pw = NULL;
		_cleanup_(backend_unrefp) struct backend *b = NULL;
		const char *bid = db_rows_get(&rows, i, 0), *hid = db_rows_get(&rows, i, 1);
		struct nq_error e = { 0 };
		char sid[96];
		int gen = 0;
		b = registry_get(m->reg, bid);
		secrets_id(sid, sizeof sid, "backend", bid);
		if (!b || secrets_get(m, sid, &pw, &gen) < 0)
			continue;
		if (rotate_on(m, b, hid, b->cfg, pw, &e) >= 0) {
			(void)set_generation(m, bid, hid, gen);
			log_info("backend rotation caught up id=%s host=%s", bid, hid);
		}
	}
}

static int
reconfigure_on(struct manager *m, const struct backend *b, const char *hid,
	const void *old_cfg, const void *new_cfg, const struct secret *secret,
	struct nq_error *err)
{
	struct backend_env env = { 0 };
	int r = hosts_env(m, hid, &env, err);

	if (r < 0)
		return r;
	r = b->ops->reconfigure(&env, b->id, old_cfg, new_cfg, secret, err);
	hosts_env_release(&env);
	return r;
}

int
backend_hosts_reconfigure(struct manager *m, const struct backend *b, const void *old_cfg,
	const void *new_cfg, const struct secret *secret, struct nq_error *err)
{
	char ids[BACKEND_HOSTS_MAX][64], sid[96];
	size_t n = 0;
	int gen = 0, r;

	if (backend_hosts_list(m, b->id, ids, &n) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (n == 0)
		snprintf(ids[n++], 64, "%s", HOST_LOCAL_ID);
	r = reconfigure_on(m, b, ids[0], old_cfg, new_cfg, secret, err);
	if (r < 0)
		return r;
	secrets_id(sid, sizeof sid, "backend", b->id);
	if (secret && (r = secrets_put(m, sid, secret, &gen)) < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (secret)
		(void)set_generation(m, b->id, ids[0], gen);
	for (size_t i = 1; i < n; i++) {
		struct nq_error e = { 0 };
		if (reconfigure_on(m, b, ids[i], old_cfg, new_cfg, secret, &e) < 0)
			log_warn("backend change not applied id=%s host=%s code=%s", b->id,
				ids[i], e.code);
		else if (secret)
			(void)set_generation(m, b->id, ids[i], gen);
	}
	return 0;
}
