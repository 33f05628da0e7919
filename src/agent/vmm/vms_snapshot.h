/* Snapshots of a VM's disk, taken by the agent that runs the VM (a VM
 * running on host A is never copied by host B): the VM is claimed like
 * any other operation on it (vms.c), so no start, stop or delete runs
 * meanwhile. A running VM is paused (the driver's pause: QEMU's QMP
 * "stop", which drains and flushes its block layer; Firecracker's PATCH
 * /vm Paused), its disk file flushed (fsync) and copied, and resumed,
 * also when the copy failed. The result is crash-consistent: what the
 * guest had written when it was paused, not what it had in its own page
 * cache. */
#pragma once

#include <stdbool.h>

#include "agent/agent.h"
#include "agent/storage/volumes.h"

/* Copy VM id's disk into the new volume volume_id on the same backend.
 * *ret_paused tells whether the VM was running (and so paused). */
int vms_snapshot(struct agent *a, const char *id, const char *volume_id, bool *ret_paused,
	struct volume_info *ret, struct nq_error *err);
/* True when a VM of this host whose VMM runs (or is being worked on) has
 * volume_id as its disk. */
bool vms_volume_in_use(struct agent *a, const char *volume_id);
