/* High availability (ha.c): every --ha-interval seconds, under the
 * run-once lock, a VM with ha = 1 that was running on a host unreachable
 * for longer than the host's lease period (+ one interval) is started on
 * another eligible host (hosts_place excluding the dead one), with its
 * ids and volume unchanged. The target agent refuses while the old
 * host's lease on the volume is unexpired (409 volume_leased): the VM is
 * tried again next round. On success the VM's row moves to the target
 * and event vm.ha_restarted names the dead host. A VM with ha = 0 stays
 * where it is. When the dead host returns, the reconciler tells it to
 * forget the VM (reconcile_apply.c): it never runs there again. */
#pragma once

struct manager;

/* Start the loop (after storage_refresher_start; stops with its flag). */
int ha_start(struct manager *m);
/* Join it (after storage_refresher_stop). */
void ha_stop(struct manager *m);
/* One round now (tests, and the loop). */
void ha_round(struct manager *m);
