/* Recovery at start (issue 10): a manager that died in the middle of an
 * operation left rows in a transitional state ("provisioning") that no
 * worker owns any more. The agent's volume and VM lists are the truth: a
 * finished clone is adopted (volume "ready"), an unfinished one is deleted
 * on the agent (which removes its temp file and cancels a clone still in
 * progress) and its row dropped; the VM ends "running" when the agent runs
 * it, else "error" with the cause. Runs in a background thread until every
 * row is settled, so an agent that is down at start is retried. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "manager/services/claims.h"
#include "manager/services/hostpool.h"
#include "common/log.h"
#include "manager/db/rows.h"
#include "manager/manager.h"
#include "manager/services/vms.h"
#include "manager/services/vms_internal.h"

#define RECOVER_CAUSE                                                                     \
	"provisioning was interrupted by a manager restart; "                             \
	"start the VM to provision it again"
#define RECOVER_RETRY_SECS 2

int
vms_volume_ready(struct manager *m, const char *vid, const struct volume_info *vi)
{
	char sz[24], alloc[24];

	snprintf(sz, sizeof sz, "%" PRIu64, vi->size_bytes);
	snprintf(alloc, sizeof alloc, "%" PRIu64, vi->allocated_bytes);
	const char *p[] = { vid, vi->path, sz, vi->allocated_known ? alloc : NULL };
	return db_exec(m->db,
		"UPDATE volumes SET path = $2, size_bytes = $3,"
		" allocated_bytes = $4, state = 'ready' WHERE id = $1",
		4, p, NULL);
}

/* One volume row in state provisioning: 1 adopted, 0 removed, <0 try
 * again later (the agent or the server cannot answer now). */
static int
recover_volume(struct manager *m, const char *vid, const char *backend_id)
{
	struct backend *b = registry_get(m->reg, backend_id);
	struct volume_info vi = { 0 };
	struct nq_error err = { 0 };
	const char *p[] = { vid };
	int r;

	if (b) {
		struct backend_env env = { 0 };
		r = hosts_env_for_volume(m, vid, &env, &err);
		if (r >= 0)
			r = backend_agent_volume_find(&env, b->ops->kind, b->id, vid, &vi,
				&err);
		if (r == 0)
			r = b->ops->delete_volume(&env, b->id, b->cfg, vid, &err);
		hosts_env_release(&env);
		backend_unref(b);
		if (r < 0) {
			log_warn("recovery: cannot settle volume id=%s code=%s; retrying",
				vid, err.code);
			return r;
		}
		if (r == 1) {
			log_info("recovery: adopted the finished clone volume=%s", vid);
			return vms_volume_ready(m, vid, &vi) < 0 ? -EIO : 1;
		}
	}
	log_info("recovery: removed the unfinished volume=%s", vid);
	return db_exec(m->db, "DELETE FROM volumes WHERE id = $1", 1, p, NULL) < 0 ? -EIO : 0;
}

/* The agent's state of VM id ("running", …) into state, "" when unknown. */
static int
agent_vm_state(struct manager *m, const char *id, char state[16])
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	struct nq_error err = { 0 };
	char path[128];
	int r;

	state[0] = '\0';
	snprintf(path, sizeof path, "/v1/vms/%s", id);
	r = vms_env_by_id(m, id, &env, &err);
	if (r < 0)
		return r;
	r = agent_call(env.agent, "GET", path, NULL, 0, m->env.call_timeout_ms, &rep, &err);
	if (r >= 0)
		snprintf(state, 16, "%s",
			json_string_value(json_object_get(rep.json, "state")) ?: "");
	else if (rep.status == 404)
		r = 0;
	agent_reply_release(&rep);
	return r;
}

/* One VM in state provisioning, claimed by the caller. */
static int
recover_vm(struct manager *m, const char *id, const char *backend_id)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };
	char state[16], now[24];
	bool ready = false;
	int r;

	r = db_query(m->db, "SELECT " VOLUME_ROW_COLS " FROM volumes WHERE vm_id = $1", 1,
		p, &rows);
	for (unsigned i = 0; r >= 0 && i < rows.nrows; i++) {
		struct volume_row v;
		r = volume_row_read(&rows, i, &v);
		if (r >= 0 && strcmp(v.state, "provisioning") == 0)
			r = recover_volume(m, v.id, backend_id);
		ready |= r > 0 || (r >= 0 && strcmp(v.state, "ready") == 0);
	}
	if (r < 0 || (r = agent_vm_state(m, id, state)) < 0)
		return r;
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	bool running = ready && strcmp(state, "running") == 0;
	const char *pu[] = { id, running ? "running" : "error",
		running ? NULL : RECOVER_CAUSE, now };
	r = db_exec(m->db,
		"UPDATE vms SET state = $2, error = $3, updated_at = $4"
		" WHERE id = $1 AND state = 'provisioning'",
		4, pu, NULL);
	log_info("recovery: VM id=%s is %s", id, running ? "running" : "in error");
	return r;
}

/* Volumes created through /v1/volumes that never finished. */
static int
recover_loose_volumes(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	int r, bad = 0;

	r = db_query(m->db,
		"SELECT " VOLUME_ROW_COLS " FROM volumes WHERE vm_id IS NULL"
		" AND state = 'provisioning'",
		0, NULL, &rows);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < rows.nrows; i++) {
		char key[CLAIM_KEY_MAX];
		struct volume_row v;
		if (volume_row_read(&rows, i, &v) < 0) {
			bad++;
			continue;
		}
		claim_key(key, "volume", v.id);
		if (claim_try(key, "the volume", NULL) < 0)
			continue; /* created by this process: its request owns it */
		if (recover_volume(m, v.id, v.backend_id) < 0)
			bad++;
		claim_release(key);
	}
	return bad ? -EAGAIN : 0;
}

/* One pass; -EAGAIN when something must be tried again. */
int
vms_recover_once(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	int r, bad = 0;

	r = db_query(m->db, "SELECT " VM_ROW_COLS " FROM vms WHERE state = 'provisioning'",
		0, NULL, &rows);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < rows.nrows; i++) {
		char key[CLAIM_KEY_MAX];
		struct vm_row v;
		if (vm_row_read(&rows, i, &v) < 0) {
			bad++;
			continue;
		}
		claim_key(key, "vm", v.id);
		/* Claimed: an operation of this process (a delete, a new
		 * worker) owns the VM now. */
		if (claim_try(key, "the VM", NULL) < 0)
			continue;
		if (recover_vm(m, v.id, v.backend_id) < 0)
			bad++;
		claim_release(key);
	}
	if (recover_loose_volumes(m) < 0)
		bad++;
	if (vms_migrate_recover(m) < 0)
		bad++;
	return bad ? -EAGAIN : 0;
}

/* The rows this process found at start: only those are stale. A worker
 * started afterwards holds its VM's claim, so it is never touched. */
static void *
recover_main(void *arg)
{
	struct manager *m = arg;

	for (;;) {
		int r = vms_recover_once(m);
		if (r >= 0) {
			log_info("recovery: every interrupted operation is settled");
			break;
		}
		pthread_mutex_lock(&m->refresh_lock);
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += RECOVER_RETRY_SECS;
		while (!m->stopping &&
			pthread_cond_timedwait(&m->refresh_cond, &m->refresh_lock,
				&until) == 0)
			;
		bool stop = m->stopping;
		pthread_mutex_unlock(&m->refresh_lock);
		if (stop)
			break;
	}
	return NULL;
}

int
vms_recover_start(struct manager *m)
{
	int r = pthread_create(&m->recoverer, NULL, recover_main, m);

	if (r != 0)
		return -r;
	m->recoverer_started = true;
	return 0;
}

void
vms_recover_stop(struct manager *m)
{
	if (m->recoverer_started)
		pthread_join(m->recoverer, NULL);
	m->recoverer_started = false;
}
