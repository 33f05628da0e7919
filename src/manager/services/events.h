/* The event log: one row per thing that happened to a VM, host, backend
 * or user session (who did it, what, to which object, on which host, how
 * it ended, why), in the `events` table, so every manager sees the same
 * history and it survives restarts. GET /v1/events reads it newest first
 * with filters and cursor paging; events_trim keeps it bounded. */
#pragma once

#include <jansson.h>

#include "common/nq_error.h"

struct manager;

#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX 1000
#define EVENT_FIELD_MAX 128 /* filters and recorded fields are cut here */
#define EVENT_CAUSE_MAX 1024

/* Record one event. actor: "api" (recorded as the signed-in user of the
 * request this thread serves, when there is one), "reconciler", "refresher", "ha", a
 * user name, …; outcome: "ok", "failed", …; host_id, cause may be NULL.
 * Never fails the caller: a database error is logged. */
void events_record(struct manager *m, const char *actor, const char *action,
	const char *object_type, const char *object_id, const char *host_id,
	const char *outcome, const char *cause);

/* events_record with outcome "failed" and the cause "<code>: <message>"
 * of err (a classified error, never a secret). */
void events_record_error(struct manager *m, const char *actor, const char *action,
	const char *object_type, const char *object_id, const char *host_id,
	const struct nq_error *err);

/* Drop events older than cfg.events_retention_days and all but the
 * newest cfg.events_max_rows. Called by the refresher of the leader. */
void events_trim(struct manager *m);

/* Filters of GET /v1/events; NULL: any. action: an exact action or a
 * prefix ending in '*' ("vm.*"). before: an event id (older than that
 * event) or a time in ms; after: an event id or ms (newer than it, listed
 * oldest first, for following the log). since/until: inclusive bounds in
 * ms (0: none). */
struct events_query {
	const char *object_type, *object_id, *action, *before;
	unsigned limit;
	const char *outcome, *host_id, *after;
	long long since_ms, until_ms;
};

/* One page: items (new reference), the number of events matching the
 * filters (cursors aside), and the cursor of the next page ("" when this
 * page is the last). */
struct events_page {
	json_t *items;
	long long total;
	char next[64];
};

/* Matching events, newest first (oldest first with q->after); err (400,
 * field "before"/"after") for a cursor that names no event. */
int events_list(struct manager *m, const struct events_query *q, struct events_page *ret,
	struct nq_error *err);

/* The items of events_list alone; new reference or NULL with err. */
json_t *events_list_json(struct manager *m, const struct events_query *q,
	struct nq_error *err);
