/* Settle a cold migration a previous manager process left half done
 * (vms.migrate_to set): the VM ends on exactly one host. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/claims.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/vms.h"
#include "manager/services/vms_internal.h"

/* 1 with state when host hid knows VM id, 0 when it does not, <0 when it
 * cannot be asked. */
static int
known_on(struct manager *m, const char *hid, const char *id, char state[16])
{
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	struct nq_error err = { 0 };
	char path[128];
	int r;

	if ((r = hosts_env(m, hid, &env, &err)) < 0)
		return r;
	snprintf(path, sizeof path, "/v1/vms/%s", id);
	r = agent_call(env.agent, "GET", path, NULL, 0, m->env.call_timeout_ms, &rep, &err);
	if (r >= 0) {
		const char *s = json_string_value(json_object_get(rep.json, "state"));
		snprintf(state, 16, "%s",
			s && !strcmp(s, "running") ? "running" : "stopped");
		r = 1;
	} else if (rep.status == 404) {
		r = 0;
	}
	agent_reply_release(&rep);
	return r;
}

static int
settle_row(struct manager *m, const char *id, const char *hid, const char *state)
{
	char now[24];
	const char *p[] = { id, hid, state, now };

	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	log_info("recovery: migration of VM id=%s settled on host=%s", id, hid);
	return db_exec(m->db,
		"UPDATE vms SET host_id = $2, state = $3, error = NULL, updated_at = $4,"
		" migrate_to = '', migrate_start = 0 WHERE id = $1",
		4, p, NULL);
}

/* One VM, claimed: B has it → B; A still has it → A; neither → B. */
static int
settle_vm(struct manager *m, const struct vm_row *vm, const char *target, bool start)
{
	_cleanup_(db_rows_release) struct db_rows vrows = { 0 };
	_cleanup_(hosts_env_release) struct backend_env env = { 0 };
	const char *src = vm->has_host && vm->host_id[0] ? vm->host_id : HOST_LOCAL_ID;
	struct nq_error err = { 0 };
	struct volume_row vol;
	char state[16];
	int r;

	if ((r = known_on(m, target, vm->id, state)) != 0)
		return r < 0 ? r : settle_row(m, vm->id, target, state);
	if ((r = known_on(m, src, vm->id, state)) != 0)
		return r < 0 ? r : settle_row(m, vm->id, src, state);
	if (vms_fetch_volume(m, vm->id, &vrows, &vol) < 0)
		return settle_row(m, vm->id, src, "stopped");
	if ((r = hosts_env(m, target, &env, &err)) < 0 ||
		(r = vms_agent_describe(m, &env, vm, vol.id, start, &err)) < 0) {
		log_warn("recovery: VM id=%s cannot arrive on host=%s code=%s; retrying",
			vm->id, target, err.code);
		return r;
	}
	return settle_row(m, vm->id, target, start ? "running" : "stopped");
}

int
vms_migrate_recover(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	int bad = 0;

	if (db_query(m->db,
		    "SELECT id, migrate_to, migrate_start FROM vms WHERE migrate_to <> ''",
		    0, NULL, &rows) < 0)
		return -EAGAIN;
	for (unsigned i = 0; i < rows.nrows; i++) {
		_cleanup_(db_rows_release) struct db_rows vr = { 0 };
		const char *id = db_rows_get(&rows, i, 0);
		const char *st = db_rows_get(&rows, i, 2);
		char key[CLAIM_KEY_MAX];
		struct vm_row v;
		claim_key(key, "vm", id);
		if (claim_try(key, "the VM", NULL) < 0)
			continue; /* a migration of this process owns it */
		if (vms_fetch(m, id, &vr, &v) >= 0 &&
			settle_vm(m, &v, db_rows_get(&rows, i, 1),
				st && !strcmp(st, "1")) < 0)
			bad++;
		claim_release(key);
	}
	return bad ? -EAGAIN : 0;
}
