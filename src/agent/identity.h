/* Who this agent is: a UUID kept in <state_dir>/agent-id (generated on
 * first start, never changed after) and a host name (--host-name, or the
 * system's). The manager tells agents apart by the id. */
#pragma once

#include "agent/agent.h"

#define AGENT_ID_FILE "agent-id"

/* Fill a->agent_id and a->host_name. Logs what went wrong. */
int agent_identity_load(struct agent *a);
