/* How each VM's hypervisor process last ended, as its agent reported it
 * (the agent VM object's last_exit: {code, signal, reason, requested,
 * at}). Kept in memory from the agent's VM list, which the manager reads
 * whenever it lists or shows VMs; the agent is the source of truth.
 * Thread-safe. */
#pragma once

#include <jansson.h>

/* Replace the table with the "last_exit" of every VM in an agent's
 * GET /v1/vms array (borrowed). */
void vm_exits_update(json_t *agent_vms);
/* last_exit for VM id: a new reference, json null when unknown. */
json_t *vm_exits_get(const char *id);