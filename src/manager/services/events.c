/* See events.h. Event ids sort by time: 13 hex digits of the time in ms,
 * a per-process sequence and random bits, so "newest first" and "older
 * than event X" are plain comparisons on (at_ms, id). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/events.h"

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 8-4-4-4-12 lowercase hex like a UUID: ms time first, then a sequence
 * that orders events of one process within one ms. */
static void
new_event_id(long long ms, char out[AUTH_UUID_LEN + 1])
{
	static unsigned seq;
	unsigned s = __atomic_fetch_add(&seq, 1, __ATOMIC_RELAXED) & 0xffff;
	unsigned char rnd[6];

	randombytes_buf(rnd, sizeof rnd);
	snprintf(out, AUTH_UUID_LEN + 1, "%08llx-%04llx-%04x-%02x%02x-%02x%02x%02x%02x0000",
		((unsigned long long)ms >> 16) & 0xffffffffULL,
		(unsigned long long)ms & 0xffff, s, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4],
		rnd[5]);
}

void
events_record(struct manager *m, const char *actor, const char *action,
	const char *object_type, const char *object_id, const char *host_id,
	const char *outcome, const char *cause)
{
	char id[AUTH_UUID_LEN + 1], at[24];
	long long ms = now_ms();
	char cut[EVENT_CAUSE_MAX + 1];

	new_event_id(ms, id);
	snprintf(at, sizeof at, "%lld", ms);
	snprintf(cut, sizeof cut, "%s", cause ? cause : "");
	const char *p[] = { id, at, actor ? actor : "", action, object_type,
		object_id ? object_id : "", host_id ? host_id : "",
		outcome ? outcome : "ok", cut };
	if (db_exec(m->db,
		    "INSERT INTO events (id, at_ms, actor, action, object_type,"
		    " object_id, host_id, outcome, cause) VALUES ($1, $2, $3, $4, $5,"
		    " $6, $7, $8, $9)",
		    9, p, NULL) < 0)
		log_warn("cannot record event action=%s object=%s", action,
			object_id ? object_id : "-");
	else
		log_debug("event action=%s object_type=%s object_id=%s outcome=%s", action,
			object_type, object_id ? object_id : "-", outcome ? outcome : "ok");
}

/* The (at_ms, id) position before which to list, from q->before. */
static int
resolve_before(struct manager *m, const char *before, char at[24], char id[64],
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	size_t n = strlen(before);

	if (n > 0 && n <= 18 && strspn(before, "0123456789") == n) {
		snprintf(at, 24, "%s", before);
		snprintf(id, 64, "%s", ""); /* every id is > "": strictly older ms */
		return 0;
	}
	const char *p[] = { before };
	if (n > AUTH_UUID_LEN ||
		db_query(m->db, "SELECT at_ms, id FROM events WHERE id = $1", 1, p,
			&rows) < 0 ||
		rows.nrows != 1)
		return nq_error_setr(err, -EINVAL, "invalid_field", "before",
			"before must be an event id or a time in ms");
	snprintf(at, 24, "%s", db_rows_get(&rows, 0, 0));
	snprintf(id, 64, "%s", db_rows_get(&rows, 0, 1));
	return 0;
}

static json_t *
event_json(const struct db_rows *rows, unsigned i)
{
	const char *host = db_rows_get(rows, i, 6), *cause = db_rows_get(rows, i, 8);
	const char *at = db_rows_get(rows, i, 1);

	return json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:o}", "id",
		db_rows_get(rows, i, 0) ?: "", "at",
		(json_int_t)(at ? strtoll(at, NULL, 10) : 0), "actor",
		db_rows_get(rows, i, 2) ?: "", "action", db_rows_get(rows, i, 3) ?: "",
		"object_type", db_rows_get(rows, i, 4) ?: "", "object_id",
		db_rows_get(rows, i, 5) ?: "", "host_id",
		host && *host ? json_string(host) : json_null(), "outcome",
		db_rows_get(rows, i, 7) ?: "", "cause",
		cause && *cause ? json_string(cause) : json_null());
}

json_t *
events_list_json(struct manager *m, const struct events_query *q, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	char at[24] = "", bid[64] = "", lim[16];
	json_t *arr;

	if (q->before && resolve_before(m, q->before, at, bid, err) < 0)
		return NULL;
	snprintf(lim, sizeof lim, "%u", q->limit ? q->limit : EVENTS_LIMIT_DEFAULT);
	/* An absent filter is NULL and matches every row. */
	const char *p[] = { q->object_type, q->object_id, q->action, at[0] ? at : NULL,
		bid, lim };
	if (db_query(m->db,
		    "SELECT id, at_ms, actor, action, object_type, object_id, host_id,"
		    " outcome, cause FROM events WHERE (CAST($1 AS TEXT) IS NULL OR object_type = $1)"
		    " AND (CAST($2 AS TEXT) IS NULL OR object_id = $2) AND (CAST($3 AS TEXT) IS NULL OR action = $3)"
		    " AND (CAST($4 AS BIGINT) IS NULL OR at_ms < $4 OR (at_ms = $4 AND id < $5))"
		    " ORDER BY at_ms DESC, id DESC LIMIT $6",
		    6, p, &rows) < 0) {
		nq_error_set(err, "internal_error", NULL, "database error");
		return NULL;
	}
	arr = json_array();
	for (unsigned i = 0; arr && i < rows.nrows; i++)
		json_array_append_new(arr, event_json(&rows, i));
	return arr;
}
