/* See ha.h. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/claims.h"
#include "manager/services/events.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/reconciler.h"

#define HA_CALL_TIMEOUT_MS 60000
#define HA_LEASE_DEFAULT 15 /* an agent that did not say (older agent) */

/* Running HA VMs on hosts that do not answer, with their volume. */
#define HA_CANDIDATES_SQL                                                                 \
	"SELECT v.id, v.host_id, v.backend_id, v.vcpus, v.memory_mib, v.kernel,"          \
	" v.initrd, vol.id, h.unreachable_since, h.lease_seconds, h.name FROM vms v"      \
	" JOIN hosts h ON h.id = v.host_id JOIN volumes vol ON vol.vm_id = v.id AND"      \
	" vol.state = 'ready' WHERE v.ha = 1 AND v.state = 'running' AND"                 \
	" h.unreachable_since > 0 ORDER BY v.created_at, v.id"

enum {
	C_ID,
	C_HOST,
	C_BACKEND,
	C_VCPUS,
	C_MEM,
	C_KERNEL,
	C_INITRD,
	C_VOL,
	C_SINCE,
	C_LEASE,
	C_HNAME
};

static const char *
cell(const struct db_rows *r, unsigned i, unsigned c)
{
	return db_rows_get(r, i, c) ?: "";
}

static long long
num(const struct db_rows *r, unsigned i, unsigned c)
{
	return strtoll(cell(r, i, c), NULL, 10);
}

/* The agent's create body for row i: same ids, same volume, started. */
static char *
create_body(struct manager *m, const struct db_rows *r, unsigned i)
{
	struct backend *b = registry_get(m->reg, cell(r, i, C_BACKEND));
	char *body;
	json_t *o;

	if (!b)
		return NULL;
	o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:b}", "id", cell(r, i, C_ID),
		"backend_kind", b->ops->kind, "backend_id", cell(r, i, C_BACKEND),
		"volume_id", cell(r, i, C_VOL), "vcpus", (json_int_t)num(r, i, C_VCPUS),
		"memory_mib", (json_int_t)num(r, i, C_MEM), "kernel", cell(r, i, C_KERNEL),
		"start", 1);
	backend_unref(b);
	if (o && *cell(r, i, C_INITRD))
		json_object_set_new(o, "initrd", json_string(cell(r, i, C_INITRD)));
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return body;
}

/* Create and start the VM on target; one the target knows already (an
 * earlier round created it, its start was refused) is started. */
static int
boot_on(struct manager *m, const char *target, const struct db_rows *r, unsigned i,
	struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	struct backend_env env;
	char path[128];
	_cleanup_free_ char *body = create_body(m, r, i);
	int rc;

	if (!body)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"the VM's storage backend is gone");
	rc = hosts_env(m, target, &env, err);
	if (rc < 0)
		return rc;
	rc = agent_call(env.agent, "POST", "/v1/vms", body, strlen(body),
		HA_CALL_TIMEOUT_MS, &rep, err);
	if (rc < 0 && rep.status == 409 && !strcmp(err->code, "already_exists")) {
		agent_reply_release(&rep);
		memset(err, 0, sizeof *err);
		snprintf(path, sizeof path, "/v1/vms/%s/start", cell(r, i, C_ID));
		rc = agent_call(env.agent, "POST", path, NULL, 0, HA_CALL_TIMEOUT_MS, &rep,
			err);
	}
	agent_reply_release(&rep);
	hosts_env_release(&env);
	return rc;
}

static void
restart_one(struct manager *m, const struct db_rows *r, unsigned i)
{
	const char *id = cell(r, i, C_ID), *dead = cell(r, i, C_HOST);
	struct place_req q = { id, cell(r, i, C_BACKEND), (unsigned)num(r, i, C_MEM), NULL,
		dead, NULL, cell(r, i, C_KERNEL), cell(r, i, C_INITRD) };
	struct nq_error err = { 0 };
	char target[64], now[24], cause[512];
	unsigned long changes = 0;

	if (hosts_place(m, &q, target, &err) < 0) {
		log_warn("HA: no host for VM id=%s code=%s: %s", id, err.code, err.message);
		return;
	}
	if (boot_on(m, target, r, i, &err) < 0) {
		/* volume_leased: the dead host's lease has not expired yet. */
		log_info("HA: VM id=%s not started on host=%s yet code=%s: %s", id, target,
			err.code, err.message);
		return;
	}
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	const char *p[] = { id, target, now, dead };
	if (db_exec(m->db,
		    "UPDATE vms SET host_id = $2, state = 'running', error = NULL,"
		    " state_changed_at = $3, updated_at = $3 WHERE id = $1 AND host_id = $4",
		    4, p, &changes) < 0 ||
		changes != 1) {
		log_error("HA: VM id=%s started on host=%s but its row did not move", id,
			target);
		return;
	}
	snprintf(cause, sizeof cause,
		"host %.63s (%.63s) unreachable for %lld s; restarted on host %.63s",
		cell(r, i, C_HNAME), dead, (long long)time(NULL) - num(r, i, C_SINCE),
		target);
	log_warn("HA: VM restarted id=%s from=%s to=%s", id, dead, target);
	events_record(m, "ha", "vm.ha_restarted", "vm", id, target, "ok", cause);
}

void
ha_round(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	long long now = (long long)time(NULL);

	if (db_query(m->db, HA_CANDIDATES_SQL, 0, NULL, &rows) < 0)
		return;
	for (unsigned i = 0; i < rows.nrows; i++) {
		long long lease = num(&rows, i, C_LEASE);
		char key[CLAIM_KEY_MAX];

		if (lease <= 0)
			lease = HA_LEASE_DEFAULT;
		if (now - num(&rows, i, C_SINCE) <= lease + (long long)m->cfg.ha_interval)
			continue; /* its lease may still be live */
		claim_key(key, "vm", cell(&rows, i, C_ID));
		if (!claim_try_background(key))
			continue; /* an operation works on it: next round */
		restart_one(m, &rows, i);
		claim_release(key);
	}
}

static void *
ha_main(void *arg)
{
	struct manager *m = arg;

	while (manager_sleep(m, m->cfg.ha_interval * 1000))
		if (runonce_check(m))
			ha_round(m);
	return NULL;
}

int
ha_start(struct manager *m)
{
	int r = pthread_create(&m->ha, NULL, ha_main, m);

	if (r != 0)
		return -r;
	m->ha_started = true;
	return 0;
}

void
ha_stop(struct manager *m)
{
	if (!m->ha_started)
		return;
	pthread_join(m->ha, NULL);
	m->ha_started = false;
}
