/* Hosts from the database: the local row, status, the API's JSON and
 * placement (hosts_enroll.c enrolls and removes, hosts_heartbeat.c keeps
 * the rows current, backend_hosts.c attaches backends). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/services/hosts.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/hosts_internal.h"
#include "manager/services/placement.h"

int
hosts_ensure_local(struct manager *m)
{
	char now[24];
	const char *p[] = { HOST_LOCAL_ID, m->cfg.agent, now };
	const char *pb[] = { HOST_LOCAL_ID, now };

	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	/* last_seen stays 0 until the first heartbeat answers. A backend
	 * attached nowhere (from before hosts) is attached on the local host. */
	const struct db_stmt steps[] = {
		{ "INSERT INTO hosts (id, name, agent_url, created_at, fingerprint_source)"
		  " VALUES ($1, $1, $2, $3, 'local') ON CONFLICT (id) DO UPDATE SET"
		  " agent_url = $2, fingerprint_source = 'local'",
			3, p },
		{ "INSERT INTO backend_hosts (backend_id, host_id, status, updated_at)"
		  " SELECT b.id, $1, 'ok', $2 FROM backends b WHERE NOT EXISTS (SELECT 1"
		  " FROM backend_hosts bh WHERE bh.backend_id = b.id) AND b.host_id IN"
		  " ('', $1)",
			2, pb },
	};
	return db_exec_tx(m->db, steps, 2);
}

const char *
host_row_status(const struct db_rows *rows, unsigned i)
{
	if (host_num(rows, i, HC_UNREACHABLE_SINCE) != 0 ||
		host_num(rows, i, HC_LAST_SEEN) == 0)
		return "unreachable";
	if (host_num(rows, i, HC_DRAINING))
		return "draining";
	return "ok";
}

long long
host_num(const struct db_rows *rows, unsigned i, unsigned col)
{
	const char *s = db_rows_get(rows, i, col);

	return s ? strtoll(s, NULL, 10) : 0;
}

int
hosts_get_state(struct manager *m, const char *host_id, struct host_state *ret)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { host_id };
	int r;

	r = db_query(m->db, "SELECT " HOST_COLS " FROM hosts WHERE id = $1", 1, p, &rows);
	if (r < 0)
		return r;
	if (rows.nrows == 0)
		return -ENOENT;
	snprintf(ret->status, sizeof ret->status, "%s", host_row_status(&rows, 0));
	ret->unreachable_since = host_num(&rows, 0, HC_UNREACHABLE_SINCE);
	ret->last_seen = host_num(&rows, 0, HC_LAST_SEEN);
	ret->lease_seconds = (int)host_num(&rows, 0, HC_LEASE_SECONDS);
	return 0;
}

void
hosts_name(struct manager *m, const char *id, char *buf, size_t sz)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };

	buf[0] = '\0';
	if (id && *id &&
		db_query(m->db, "SELECT name FROM hosts WHERE id = $1", 1, p, &rows) >= 0 &&
		rows.nrows == 1)
		snprintf(buf, sz, "%s", db_rows_get(&rows, 0, 0));
}

static json_t *
split_json(const char *s)
{
	json_t *arr = json_array();
	char buf[256], *save = NULL;

	snprintf(buf, sizeof buf, "%s", s ? s : "");
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(arr, json_string(t));
	return arr;
}

static json_t *
str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

static json_t *
host_json(const struct db_rows *rows, unsigned i)
{
	const char *(*g)(const struct db_rows *, unsigned, unsigned) = db_rows_get;

	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:b, s:o, s:o, s:I, s:I,"
			 " s:I, s:o, s:o, s:I, s:I, s:o}",
		"id", g(rows, i, HC_ID), "name", g(rows, i, HC_NAME), "agent_url",
		g(rows, i, HC_AGENT_URL), "agent_id", str_or_null(g(rows, i, HC_AGENT_ID)),
		"fingerprint", str_or_null(g(rows, i, HC_FINGERPRINT)),
		"fingerprint_source", g(rows, i, HC_FINGERPRINT_SOURCE), "status",
		host_row_status(rows, i), "draining", (int)host_num(rows, i, HC_DRAINING),
		"last_seen",
		host_num(rows, i, HC_LAST_SEEN)
			? json_integer(host_num(rows, i, HC_LAST_SEEN))
			: json_null(),
		"last_error", str_or_null(g(rows, i, HC_LAST_ERROR)), "cpus",
		(json_int_t)host_num(rows, i, HC_CPUS), "memory_mib",
		(json_int_t)host_num(rows, i, HC_MEMORY_MIB), "memory_free_mib",
		(json_int_t)host_num(rows, i, HC_MEMORY_FREE_MIB), "backend_kinds",
		split_json(g(rows, i, HC_BACKEND_KINDS)), "hypervisors",
		split_json(g(rows, i, HC_HYPERVISORS)), "vm_count",
		(json_int_t)host_num(rows, i, HC_VM_COUNT), "lease_seconds",
		(json_int_t)host_num(rows, i, HC_LEASE_SECONDS), "unreachable_since",
		host_num(rows, i, HC_UNREACHABLE_SINCE)
			? json_integer(host_num(rows, i, HC_UNREACHABLE_SINCE))
			: json_null());
}

json_t *
hosts_list_json(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	json_t *arr;

	if (db_query(m->db,
		    "SELECT " HOST_COLS " FROM hosts ORDER BY CASE WHEN id = 'local'"
		    " THEN 0 ELSE 1 END, name",
		    0, NULL, &rows) < 0)
		return NULL;
	arr = json_array();
	for (unsigned i = 0; arr && i < rows.nrows; i++)
		json_array_append_new(arr, host_json(&rows, i));
	return arr;
}

json_t *
hosts_get_json(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };

	if (db_query(m->db, "SELECT " HOST_COLS " FROM hosts WHERE id = $1", 1, p, &rows) <
		0) {
		nq_error_set(err, "internal_error", NULL, "database error");
		return NULL;
	}
	if (rows.nrows == 0) {
		nq_error_set(err, "not_found", NULL, "no host with id %.64s", id);
		return NULL;
	}
	return host_json(&rows, 0);
}
