/* Shared by services/hosts*.c and backend_hosts.c only. */
#pragma once

#include <jansson.h>

#include "manager/db/db.h"
#include "common/nq_error.h"

struct manager;

/* Every host column the API shows, in HC_* order, and the VMs placed
 * there. */
#define HOST_COLS                                                                         \
	"id, name, agent_url, agent_id, fingerprint, fingerprint_source, draining,"       \
	" last_seen, last_error, cpus, memory_mib, memory_free_mib, backend_kinds,"       \
	" hypervisors, lease_seconds, unreachable_since,"                                 \
	" (SELECT COUNT(*) FROM vms WHERE vms.host_id = hosts.id)"
enum {
	HC_ID,
	HC_NAME,
	HC_AGENT_URL,
	HC_AGENT_ID,
	HC_FINGERPRINT,
	HC_FINGERPRINT_SOURCE,
	HC_DRAINING,
	HC_LAST_SEEN,
	HC_LAST_ERROR,
	HC_CPUS,
	HC_MEMORY_MIB,
	HC_MEMORY_FREE_MIB,
	HC_BACKEND_KINDS,
	HC_HYPERVISORS,
	HC_LEASE_SECONDS,
	HC_UNREACHABLE_SINCE,
	HC_VM_COUNT,
};

long long host_num(const struct db_rows *rows, unsigned i, unsigned col);
/* "unreachable", "draining" or "ok" for row i of a HOST_COLS result. */
const char *host_row_status(const struct db_rows *rows, unsigned i);

/* GET /v1/host on host id (its own client) and record the answer; on
 * failure record it unreachable. */
int hosts_heartbeat_one(struct manager *m, const char *id, long timeout_ms,
	struct nq_error *err);
/* The agent's self-description recorded for host id. */
int hosts_record_info(struct manager *m, const char *id, json_t *info);
