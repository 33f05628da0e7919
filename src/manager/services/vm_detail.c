/* GET /v1/vms/{id}: the VM of vms_get_json plus what a detail page needs:
 * host {id, name}, backend {id, name, kind}, disk {path, size_bytes,
 * allocated_bytes} (asked of the VM's agent for DISK_TIMEOUT_MS at most,
 * never of a host known to be unreachable; the volume row's figures when
 * the agent cannot say), state_history (the VM's vm.* events,
 * newest first) and last_exit as the agent reported it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "manager/agent_client.h"
#include "manager/backends/backend.h"
#include "manager/db/db.h"
#include "manager/manager.h"
#include "manager/services/hostpool.h"
#include "manager/services/vms.h"

#define HISTORY_MAX "20"
/* A detail page must not wait for a dead or frozen host (GET /v1/vms/{id}
 * answers from the database otherwise): the agent gets half a second. */
#define DISK_TIMEOUT_MS 500

static json_t *
str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *
num_or_null(const char *s)
{
	return s && *s ? json_integer(strtoll(s, NULL, 10)) : json_null();
}

static json_t *
backend_json(struct manager *m, const char *bid)
{
	_cleanup_(db_rows_release) struct db_rows r = { 0 };
	const char *p[] = { bid };

	if (!bid ||
		db_query(m->db, "SELECT id, name, kind FROM backends WHERE id = $1", 1, p,
			&r) < 0 ||
		r.nrows == 0)
		return json_null();
	return json_pack("{s:o, s:o, s:o}", "id", str_or_null(db_rows_get(&r, 0, 0)),
		"name", str_or_null(db_rows_get(&r, 0, 1)), "kind",
		str_or_null(db_rows_get(&r, 0, 2)));
}

static json_t *
history_json(struct manager *m, const char *id)
{
	_cleanup_(db_rows_release) struct db_rows r = { 0 };
	const char *p[] = { id };
	json_t *a = json_array();

	if (db_query(m->db,
		    "SELECT at_ms, action, outcome, cause, actor FROM events"
		    " WHERE object_type = 'vm' AND object_id = $1"
		    " ORDER BY at_ms DESC, id DESC LIMIT " HISTORY_MAX,
		    1, p, &r) < 0)
		return a;
	for (unsigned i = 0; i < r.nrows; i++)
		json_array_append_new(a,
			json_pack("{s:o, s:o, s:o, s:o, s:o}", "at_ms",
				num_or_null(db_rows_get(&r, i, 0)), "action",
				str_or_null(db_rows_get(&r, i, 1)), "outcome",
				str_or_null(db_rows_get(&r, i, 2)), "cause",
				str_or_null(db_rows_get(&r, i, 3)), "actor",
				str_or_null(db_rows_get(&r, i, 4))));
	return a;
}

/* The volume row's figures: the fallback when the agent cannot answer. */
static json_t *
disk_from_db(struct manager *m, const char *id)
{
	_cleanup_(db_rows_release) struct db_rows r = { 0 };
	const char *p[] = { id };

	if (db_query(m->db,
		    "SELECT path, size_bytes, allocated_bytes FROM volumes"
		    " WHERE vm_id = $1 AND state <> 'error'",
		    1, p, &r) < 0 ||
		r.nrows == 0)
		return json_null();
	return json_pack("{s:o, s:o, s:o, s:s}", "path", str_or_null(db_rows_get(&r, 0, 0)),
		"size_bytes", num_or_null(db_rows_get(&r, 0, 1)), "allocated_bytes",
		num_or_null(db_rows_get(&r, 0, 2)), "source", "manager");
}

static json_t *
disk_json(struct manager *m, const char *id, const char *host_id)
{
	struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	struct nq_error err = { 0 };
	char path[128];
	json_t *d, *out = NULL;

	if (host_id && hosts_env(m, host_id, &env, &err) >= 0) {
		snprintf(path, sizeof path, "/v1/vms/%s", id);
		if (agent_call(env.agent, "GET", path, NULL, 0, DISK_TIMEOUT_MS, &rep,
			    &err) >= 0 &&
			(d = json_object_get(rep.json, "disk")) &&
			json_is_string(json_object_get(d, "path")) &&
			json_is_integer(json_object_get(d, "size_bytes")))
			out = json_pack("{s:O, s:O, s:O, s:s}", "path",
				json_object_get(d, "path"), "size_bytes",
				json_object_get(d, "size_bytes"), "allocated_bytes",
				json_object_get(d, "allocated_bytes"), "source", "agent");
		agent_reply_release(&rep);
		hosts_env_release(&env);
	}
	return out ? out : disk_from_db(m, id);
}

json_t *
vms_detail_json(struct manager *m, const char *id, struct nq_error *err)
{
	json_t *vm = vms_get_json(m, id, err);
	const char *hid, *bid, *vid;

	if (!vm)
		return NULL;
	vid = json_string_value(json_object_get(vm, "id"));
	hid = json_string_value(json_object_get(vm, "host_id"));
	bid = json_string_value(json_object_get(vm, "storage_backend_id"));
	json_object_set_new(vm, "host",
		hid ? json_pack("{s:s, s:O}", "id", hid, "name",
			      json_object_get(vm, "host_name"))
		    : json_null());
	json_object_set_new(vm, "backend", backend_json(m, bid));
	json_object_set_new(vm, "disk",
		disk_json(m, vid,
			strcmp(json_string_value(json_object_get(vm, "host_status")) ?: "",
				"unreachable")
				? hid
				: NULL));
	json_object_set_new(vm, "state_history", history_json(m, vid));
	return vm;
}
