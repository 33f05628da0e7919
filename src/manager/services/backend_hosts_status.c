/* Status and capacity of a backend per host (backend_hosts.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/services/backend_hosts.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/storage.h"

static void
store(struct manager *m, const char *bid, const char *hid, const struct backend_status *st)
{
	char t[24] = "", u[24] = "", f[24] = "", now[24];
	bool cap = st->have_capacity;

	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	if (cap) {
		snprintf(t, sizeof t, "%" PRIu64, st->cap.total_bytes);
		snprintf(u, sizeof u, "%" PRIu64, st->cap.used_bytes);
		snprintf(f, sizeof f, "%" PRIu64, st->cap.free_bytes);
	}
	const char *p[] = { bid, hid, st->status, st->code, st->message, cap ? t : NULL,
		cap ? u : NULL, cap ? f : NULL, now };
	if (db_exec(m->db,
		    "UPDATE backend_hosts SET status = $3, error_code = $4, error_message = $5,"
		    " total_bytes = $6, used_bytes = $7, free_bytes = $8, updated_at = $9"
		    " WHERE backend_id = $1 AND host_id = $2",
		    9, p, NULL) < 0)
		log_warn("cannot record backend status id=%s host=%s", bid, hid);
}

static void
check_host(struct manager *m, const struct backend *b, const char *hid,
	struct backend_status *st)
{
	struct backend_env env = { 0 };
	struct nq_error err = { 0 };
	struct host_state hs;

	memset(st, 0, sizeof *st);
	if (hosts_get_state(m, hid, &hs) >= 0 && !strcmp(hs.status, "unreachable") &&
		strcmp(hid, HOST_LOCAL_ID) != 0) {
		/* The heartbeat just failed: do not wait for it again. */
		snprintf(st->status, sizeof st->status, "unreachable");
		snprintf(st->code, sizeof st->code, "agent_unavailable");
		snprintf(st->message, sizeof st->message, "host %s is unreachable", hid);
		return;
	}
	if (hosts_env(m, hid, &env, &err) < 0) {
		snprintf(st->status, sizeof st->status, "%s", storage_status_of(err.code));
		snprintf(st->code, sizeof st->code, "%s", err.code);
		snprintf(st->message, sizeof st->message, "%s", err.message);
		return;
	}
	storage_check_on(m, b, &env, st);
	hosts_env_release(&env);
}

void
backend_hosts_refresh(struct manager *m, const struct backend *b,
	struct backend_status *ret)
{
	char ids[BACKEND_HOSTS_MAX][64];
	struct backend_status st;
	size_t n = 0;
	bool have = false;

	if (backend_hosts_list(m, b->id, ids, &n) < 0 || n == 0) {
		storage_check_on(m, b, &m->env, ret);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		check_host(m, b, ids[i], &st);
		store(m, b->id, ids[i], &st);
		/* The worst wins; among equals the first (local first). */
		if (!have || (!strcmp(ret->status, "ok") && strcmp(st.status, "ok") != 0)) {
			*ret = st;
			have = true;
		} else if (!ret->have_capacity && st.have_capacity) {
			ret->have_capacity = true;
			ret->cap = st.cap;
		}
	}
}

static json_t *
num_or_null(const char *s)
{
	return s ? json_integer(strtoll(s, NULL, 10)) : json_null();
}

json_t *
backend_hosts_json(struct manager *m, const char *backend_id)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { backend_id };
	json_t *arr = json_array();

	if (!arr ||
		db_query(m->db,
			"SELECT bh.host_id, h.name, bh.status, bh.error_code,"
			" bh.error_message, bh.total_bytes, bh.used_bytes, bh.free_bytes"
			" FROM backend_hosts bh JOIN hosts h ON h.id = bh.host_id"
			" WHERE bh.backend_id = $1 ORDER BY CASE WHEN bh.host_id ="
			" 'local' THEN 0 ELSE 1 END, h.name",
			1, p, &rows) < 0)
		return arr;
	for (unsigned i = 0; i < rows.nrows; i++) {
		const char *code = db_rows_get(&rows, i, 3) ?: "";
		const char *total = db_rows_get(&rows, i, 5);
		json_t *err = *code ? json_pack("{s:s, s:s}", "code", code, "message",
					      db_rows_get(&rows, i, 4) ?: "")
				    : json_null();
		json_t *cap = total ? json_pack("{s:o, s:o, s:o}", "total_bytes",
					      num_or_null(total), "used_bytes",
					      num_or_null(db_rows_get(&rows, i, 6)),
					      "free_bytes",
					      num_or_null(db_rows_get(&rows, i, 7)))
				    : json_null();
		json_array_append_new(arr,
			json_pack("{s:s, s:s, s:s, s:o, s:o}", "host_id",
				db_rows_get(&rows, i, 0), "host_name",
				db_rows_get(&rows, i, 1), "status",
				db_rows_get(&rows, i, 2), "error", err, "capacity", cap));
	}
	return arr;
}
