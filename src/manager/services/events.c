/* See events.h: recording and trimming (the listing is events_query.c).
 * Event ids sort by time: 13 hex digits of the time in ms, a per-process
 * sequence and random bits, so "newest first" and "older than event X"
 * are plain comparisons on (at_ms, id). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http_server.h"
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
	char cut[EVENT_CAUSE_MAX + 1], oid[EVENT_FIELD_MAX + 1], who[EVENT_FIELD_MAX + 1];

	new_event_id(ms, id);
	snprintf(at, sizeof at, "%lld", ms);
	snprintf(cut, sizeof cut, "%s", cause ? cause : "");
	snprintf(oid, sizeof oid, "%s", object_id ? object_id : "");
	/* "api": the signed-in user of the request being served, when known. */
	if (actor && !strcmp(actor, "api") && *http_current_user())
		actor = http_current_user();
	snprintf(who, sizeof who, "%s", actor ? actor : "");
	const char *p[] = { id, at, who, action, object_type, oid, host_id ? host_id : "",
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

void
events_record_error(struct manager *m, const char *actor, const char *action,
	const char *object_type, const char *object_id, const char *host_id,
	const struct nq_error *err)
{
	char cause[EVENT_CAUSE_MAX + 1];

	snprintf(cause, sizeof cause, "%s: %s", err->code[0] ? err->code : "error",
		err->message);
	events_record(m, actor, action, object_type, object_id, host_id, "failed", cause);
}

void
events_trim(struct manager *m)
{
	char cut[24], keep[24];
	unsigned long gone = 0, over = 0;

	snprintf(cut, sizeof cut, "%lld",
		now_ms() - (long long)m->cfg.events_retention_days * 86400000LL);
	snprintf(keep, sizeof keep, "%u",
		m->cfg.events_max_rows ? m->cfg.events_max_rows - 1 : 0);
	const char *p1[] = { cut }, *p2[] = { keep };
	/* Ids sort like (at_ms, id): the row at offset max-1 is the oldest
	 * one kept. */
	if (db_exec(m->db, "DELETE FROM events WHERE at_ms < $1", 1, p1, &gone) < 0 ||
		db_exec(m->db,
			"DELETE FROM events WHERE id < (SELECT id FROM events"
			" ORDER BY id DESC LIMIT 1 OFFSET $1)",
			1, p2, &over) < 0)
		log_warn("cannot trim the event log");
	else if (gone + over > 0)
		log_info("event log trimmed old=%lu over_bound=%lu", gone, over);
}
