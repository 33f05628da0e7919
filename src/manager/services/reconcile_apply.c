/* What the reconciler writes (see reconciler.h): one agent VM list
 * against the database rows of its host. The agent is trusted for facts
 * about its own VMs (state, exit), never for where a VM belongs: a VM the
 * database places on another host (HA moved it while this host was away)
 * is forgotten here, never started again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/claims.h"
#include "manager/services/events.h"
#include "manager/services/hostpool.h"
#include "manager/services/reconciler.h"

#define FORGET_TIMEOUT_MS 10000

/* last_exit in the contract's shape only ({code, signal, reason,
 * requested, at} and shutdown when the agent says graceful/forced), as
 * compact JSON text with sorted keys so equal exits
 * compare equal; "" when the agent reports none. Caller frees. */
char *
reconcile_exit_text(json_t *e)
{
	json_t *code = json_object_get(e, "code"), *sig = json_object_get(e, "signal");
	json_t *reason = json_object_get(e, "reason"), *at = json_object_get(e, "at");
	json_t *o;
	char *s;

	if (!json_is_object(e) || !json_is_string(reason))
		return strdup("");
	o = json_pack("{s:o, s:o, s:s%, s:b, s:o}", "code",
		json_is_integer(code) ? json_copy(code) : json_null(), "signal",
		json_is_integer(sig) ? json_copy(sig) : json_null(), "reason",
		json_string_value(reason),
		json_string_length(reason) > 200 ? (size_t)200 : json_string_length(reason),
		"requested", json_is_true(json_object_get(e, "requested")), "at",
		json_is_integer(at) ? json_copy(at) : json_null());
	json_t *how = json_object_get(e, "shutdown");
	if (o && json_is_string(how) && json_string_length(how) < 16)
		json_object_set(o, "shutdown", how);
	s = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(o);
	return s ? s : strdup("");
}

/* The agent knows a VM the database places elsewhere: forget it there. */
static void
forget(struct manager *m, const char *host_id, const char *id, const char *owner)
{
	struct agent_reply rep = { 0 };
	struct nq_error err = { 0 };
	struct backend_env env;
	char path[128], cause[256];
	int r;

	if (hosts_env(m, host_id, &env, &err) < 0)
		return;
	snprintf(path, sizeof path, "/v1/vms/%s", id);
	r = agent_call(env.agent, "DELETE", path, NULL, 0, FORGET_TIMEOUT_MS, &rep, &err);
	agent_reply_release(&rep);
	hosts_env_release(&env);
	snprintf(cause, sizeof cause,
		"the VM runs from host %.64s now; host %.64s was told to forget it", owner,
		host_id);
	log_warn("VM forgotten on its old host id=%s host=%s owner=%s ok=%s", id, host_id,
		owner, r < 0 ? "no" : "yes");
	events_record(m, "reconciler", "vm.forgotten", "vm", id, host_id,
		r < 0 ? "failed" : "ok", r < 0 ? err.message : cause);
}

/* Where the database places a VM this host's agent reports. */
static void
check_owner(struct manager *m, const char *host_id, const char *id)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };
	const char *owner;

	if (db_query(m->db, "SELECT host_id FROM vms WHERE id = $1", 1, p, &rows) < 0 ||
		rows.nrows != 1)
		return; /* unknown to the database: left alone */
	owner = db_rows_get(&rows, 0, 0);
	if (owner && *owner && strcmp(owner, host_id) != 0)
		forget(m, host_id, id, owner);
}

struct agent_vm {
	const char *id, *state, *error;
	bool fenced;
	char *exit; /* reconcile_exit_text */
};

/* Row i of (id, state, last_exit) is this VM: write what changed. */
static void
update_one(struct manager *m, const char *host_id, const struct agent_vm *a,
	const char *db_state, const char *db_exit)
{
	bool ended = !strcmp(db_state, "running") &&
		     (!strcmp(a->state, "stopped") || !strcmp(a->state, "error"));
	bool exit_changed = strcmp(a->exit, db_exit) != 0;
	const char *state = ended ? a->state : db_state;
	const char *error = !strcmp(state, "error")
				    ? (a->error ? a->error : "the VM failed on its host")
				    : NULL;
	char now[24];
	unsigned long changes = 0;

	if (!ended && !exit_changed)
		return;
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	const char *p[] = { a->id, state, ended ? error : NULL, a->exit, now, host_id,
		db_state, ended ? "1" : "0" };
	if (db_exec(m->db,
		    "UPDATE vms SET state = $2, last_exit = $4, error = CASE WHEN $8 = '1'"
		    " THEN $3 ELSE error END, state_changed_at = CASE WHEN $8 = '1' THEN $5"
		    " ELSE state_changed_at END, updated_at = $5 WHERE id = $1 AND"
		    " host_id = $6 AND state = $7",
		    8, p, &changes) < 0 ||
		changes == 0 || !ended)
		return;
	json_t *e = json_loads(a->exit, 0, NULL);
	const char *why = json_string_value(json_object_get(e, "reason"));
	log_info("VM ended on its host id=%s host=%s state=%s", a->id, host_id, state);
	events_record(m, "reconciler", a->fenced ? "vm.fenced" : "vm.exited", "vm", a->id,
		host_id, strcmp(state, "error") ? "ok" : "failed",
		a->error && !strcmp(state, "error") ? a->error : (why ? why : NULL));
	json_decref(e);
}

static bool
parse_agent_vm(json_t *v, struct agent_vm *ret)
{
	ret->id = json_string_value(json_object_get(v, "id"));
	ret->state = json_string_value(json_object_get(v, "state"));
	ret->error = json_string_value(json_object_get(v, "error"));
	ret->fenced = json_is_true(json_object_get(v, "fenced"));
	if (!ret->id || !ret->state || strlen(ret->id) > AUTH_UUID_LEN)
		return false;
	ret->exit = reconcile_exit_text(json_object_get(v, "last_exit"));
	return ret->exit != NULL;
}

void
reconciler_apply(struct manager *m, const char *host_id, json_t *agent_vms)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { host_id };
	json_t *v;
	size_t i;

	if (!json_is_array(agent_vms) ||
		db_query(m->db, "SELECT id, state, last_exit FROM vms WHERE host_id = $1",
			1, p, &rows) < 0)
		return;
	json_array_foreach(agent_vms, i, v) {
		struct agent_vm a;
		char key[CLAIM_KEY_MAX];
		unsigned k;

		if (!parse_agent_vm(v, &a))
			continue;
		for (k = 0; k < rows.nrows; k++)
			if (!strcmp(db_rows_get(&rows, k, 0) ?: "", a.id))
				break;
		claim_key(key, "vm", a.id);
		/* A VM an operation of this manager works on is left to it (and
		 * never claimed here: an operation must not meet busy because
		 * of us; the updates are conditional on the state we read). */
		if (!claim_held(key)) {
			if (k == rows.nrows)
				check_owner(m, host_id, a.id);
			else
				update_one(m, host_id, &a, db_rows_get(&rows, k, 1) ?: "",
					db_rows_get(&rows, k, 2) ?: "");
		}
		free(a.exit);
	}
}

void
reconciler_reachability(struct manager *m, const char *host_id, bool ok, const char *cause)
{
	char now[24], msg[512];
	unsigned long changes = 0;

	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	snprintf(msg, sizeof msg, "%s", cause ? cause : "");
	const char *p[] = { host_id, now, msg };
	if (ok)
		(void)db_exec(m->db,
			"UPDATE hosts SET unreachable_since = 0, last_error = '', last_seen"
			" = $2 WHERE id = $1 AND unreachable_since <> 0",
			2, p, &changes);
	else
		(void)db_exec(m->db,
			"UPDATE hosts SET unreachable_since = $2, last_error = $3 WHERE id ="
			" $1 AND unreachable_since = 0",
			3, p, &changes);
	if (changes != 1)
		return;
	log_warn("host %s id=%s%s%s", ok ? "recovered" : "unreachable", host_id,
		ok ? "" : " cause=", ok ? "" : msg);
	events_record(m, "reconciler", ok ? "host.recovered" : "host.unreachable", "host",
		host_id, host_id, ok ? "ok" : "failed", ok ? NULL : msg);
}
