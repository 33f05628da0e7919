/* VM hosts: one row per agent (id, name, address, the backend kinds and
 * hypervisors it offers, when it last answered). Today the manager talks
 * to one agent, registered as host "local"; placement goes through
 * hosts_place so a second host is a new row, not a new model. */
#pragma once

#include <jansson.h>

#include "common/nq_error.h"

struct manager;

#define HOST_LOCAL_ID "local"
#define HOST_STALE_SECONDS 60

struct host_info {
	char id[64];
	char backend_kinds[128]; /* comma-separated, e.g. "smb" */
	char hypervisors[128];   /* comma-separated */
};

/* Ask the agent what it offers and record it (upsert, last_seen = now).
 * -EHOSTUNREACH with err agent_unavailable when it does not answer. */
int hosts_heartbeat(struct manager *m, struct host_info *ret, struct nq_error *err);
/* A live host that supports backend kind `kind`; err no_host otherwise. */
int hosts_place(struct manager *m, const char *kind, struct host_info *ret,
	struct nq_error *err);

/* Every host with its status ("live" when it answered within
 * HOST_STALE_SECONDS, else "stale"), after a heartbeat of the local agent;
 * new reference, NULL on a database error. */
json_t *hosts_list_json(struct manager *m);
