/* The event log: one row per thing that happened to a VM, host or
 * backend (who did it, what, to which object, on which host, how it
 * ended, why), in the `events` table, so every manager sees the same
 * history and it survives restarts. GET /v1/events reads it newest
 * first with filters and paging. */
#pragma once

#include <jansson.h>

#include "common/nq_error.h"

struct manager;

#define EVENTS_LIMIT_DEFAULT 100
#define EVENTS_LIMIT_MAX 1000
#define EVENT_FIELD_MAX 128 /* filters and recorded fields are cut here */
#define EVENT_CAUSE_MAX 1024

/* Record one event. actor: "api", "reconciler", "ha", …; outcome: "ok",
 * "failed", …; host_id, cause may be NULL. Never fails the caller: a
 * database error is logged. */
void events_record(struct manager *m, const char *actor, const char *action,
	const char *object_type, const char *object_id, const char *host_id,
	const char *outcome, const char *cause);

/* Filters of GET /v1/events; NULL: any. before: an event id (older than
 * that event) or a time in ms (older than it). */
struct events_query {
	const char *object_type, *object_id, *action, *before;
	unsigned limit;
};

/* Matching events, newest first; new reference. err (400, field "before")
 * for a before that names no event. */
json_t *events_list_json(struct manager *m, const struct events_query *q,
	struct nq_error *err);
