/* Status and capacity of a backend per host (backend_hosts.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/services/backend_hosts.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/events.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/storage.h"

/* A real change of (backend, host) status, recorded once: ok → not ok is
 * "backend.failed", not ok → ok "backend.recovered", one failure to
 * another "backend.failed" with the new cause. "busy" (an operation holds
 * the backend) is no change. */
static void
transition_event(struct manager *m, const char *bid, const char *hid, const char *old,
	const struct backend_status *st)
{
	char cause[sizeof st->code + sizeof st->message + 4];

	if (!old || !strcmp(old, st->status) || !strcmp(st->status, "busy") ||
		!strcmp(old, "busy"))
		return;
	if (!strcmp(st->status, "ok")) {
		log_info("backend recovered id=%s host=%s was=%s", bid, hid, old);
		events_record(m, "refresher", "backend.recovered", "backend", bid, hid,
			"ok", old);
		return;
	}
	snprintf(cause, sizeof cause, "%s: %s", st->code, st->message);
	log_warn("backend failed id=%s host=%s status=%s code=%s", bid, hid, st->status,
		st->code);
	events_record(m, "refresher", "backend.failed", "backend", bid, hid, "failed",
		cause);
}

static void
store(struct manager *m, const char *bid, const char *hid, const struct backend_status *st)
{
	_cleanup_(db_rows_release) struct db_rows old = { 0 };
	char t[24] = "", u[24] = "", f[24] = "", now[24];
	bool cap = st->have_capacity;
	unsigned long changes = 0;
	const char *pk[] = { bid, hid };

	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	if (cap) {
		snprintf(t, sizeof t, "%" PRIu64, st->cap.total_bytes);
		snprintf(u, sizeof u, "%" PRIu64, st->cap.used_bytes);
		snprintf(f, sizeof f, "%" PRIu64, st->cap.free_bytes);
	}
	const char *p[] = { bid, hid, st->status, st->code, st->message, cap ? t : NULL,
		cap ? u : NULL, cap ? f : NULL, now };
	if (db_query(m->db,
		    "SELECT status FROM backend_hosts WHERE backend_id = $1 AND host_id = $2",
		    2, pk, &old) < 0)
		old.nrows = 0;
	if (db_exec(m->db,
		    "UPDATE backend_hosts SET status = $3, error_code = $4, error_message = $5,"
		    " total_bytes = $6, used_bytes = $7, free_bytes = $8, updated_at = $9"
		    " WHERE backend_id = $1 AND host_id = $2",
		    9, p, &changes) < 0)
		log_warn("cannot record backend status id=%s host=%s", bid, hid);
	else if (changes > 0 && old.nrows == 1)
		transition_event(m, bid, hid, db_rows_get(&old, 0, 0), st);
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
		/* A PATCH that published a new instance meanwhile has checked
		 * it itself: this older result must not overwrite that; and
		 * "busy" (an operation holds the backend) is no news about it:
		 * the row keeps its last real status. */
		if (storage_is_current(m, b) && strcmp(st.status, "busy") != 0)
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

static uint64_t
u64(const char *s)
{
	return s ? strtoull(s, NULL, 10) : 0;
}

/* The stored row's capacity (columns 5..7) or null. */
static json_t *
row_capacity(const struct db_rows *rows, unsigned i)
{
	struct capacity c = { 0 };

	if (!db_rows_get(rows, i, 5))
		return json_null();
	c.total_bytes = u64(db_rows_get(rows, i, 5));
	c.used_bytes = u64(db_rows_get(rows, i, 6));
	c.free_bytes = u64(db_rows_get(rows, i, 7));
	return storage_capacity_json(&c);
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
			" bh.error_message, bh.total_bytes, bh.used_bytes, bh.free_bytes,"
			" bh.updated_at FROM backend_hosts bh JOIN hosts h ON h.id = bh.host_id"
			" WHERE bh.backend_id = $1 ORDER BY CASE WHEN bh.host_id ="
			" 'local' THEN 0 ELSE 1 END, h.name",
			1, p, &rows) < 0)
		return arr;
	for (unsigned i = 0; i < rows.nrows; i++) {
		const char *code = db_rows_get(&rows, i, 3) ?: "";
		json_t *err = *code ? json_pack("{s:s, s:s}", "code", code, "message",
					      db_rows_get(&rows, i, 4) ?: "")
				    : json_null();
		json_array_append_new(arr,
			json_pack("{s:s, s:s, s:s, s:o, s:o, s:I}", "host_id",
				db_rows_get(&rows, i, 0), "host_name",
				db_rows_get(&rows, i, 1), "status", db_rows_get(&rows, i, 2),
				"error", err, "capacity", row_capacity(&rows, i),
				"checked_at", (json_int_t)u64(db_rows_get(&rows, i, 8))));
	}
	return arr;
}

void
backend_hosts_worst(json_t *o, json_t *hosts)
{
	json_t *h, *worst = NULL;
	size_t i;

	json_array_foreach(hosts, i, h) {
		const char *st = json_string_value(json_object_get(h, "status"));
		if (st && strcmp(st, "ok") != 0) {
			worst = h;
			break;
		}
	}
	if (json_array_size(hosts) > 0 && !worst) {
		json_object_set_new(o, "status", json_string("ok"));
		json_object_del(o, "status_error");
	} else if (worst) {
		json_object_set(o, "status", json_object_get(worst, "status"));
		json_t *e = json_object_get(worst, "error");
		if (json_is_object(e))
			json_object_set(o, "status_error", e);
	}
	json_object_set_new(o, "hosts", hosts);
}
