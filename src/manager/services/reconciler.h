/* VM states kept current by a background reconciler, one worker per host
 * (reconciler.c), so no request ever waits for an agent to list VMs.
 * Each worker holds a long poll on its agent's GET /v1/vms?wait=&since=
 * (the agent answers when a VM changes), falls back to polling every
 * --reconcile-interval, and writes what changed to the database: state,
 * error, last_exit, the host's reachability, events. A worker of one host
 * never waits for another. Only the manager holding the run-once lock
 * (runonce.c) reconciles. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

struct manager;

/* Start the supervisor (after storage_refresher_start: it sleeps on the
 * refresher's condition and stops with its stop flag). */
int reconciler_start(struct manager *m);
/* Join every thread (after storage_refresher_stop set m->stopping). */
void reconciler_stop(struct manager *m);

/* Apply one agent GET /v1/vms answer (borrowed) for host_id to the
 * database. Exposed for the HA loop and tests. */
/* An agent's last_exit as the database keeps it: compact JSON with sorted
 * keys ({code, signal, reason, requested, at[, shutdown]}), "" for none;
 * caller frees (NULL on out of memory). */
char *reconcile_exit_text(json_t *e);
void reconciler_apply(struct manager *m, const char *host_id, json_t *agent_vms);

/* The host answered (ok) or not (cause): flips hosts.unreachable_since
 * and records host.unreachable / host.recovered once per flip. */
void reconciler_reachability(struct manager *m, const char *host_id, bool ok,
	const char *cause);

/* Run-once work (runonce.c): true while this manager holds the database
 * lock for the refresher, the reconciler and HA; re-checked (and taken
 * when free) on every call. */
#define RUNONCE_LOCK_KEY 1852928629LL /* "nqru" */
bool runonce_check(struct manager *m);
/* Sleep up to ms, or until the manager stops; false when stopping. */
bool manager_sleep(struct manager *m, unsigned ms);
