/* Volume ids this agent is creating or deleting right now (volumes.c).
 * A delete cancels the creations of its id that began before it and waits
 * for them to end; a creation that arrives while a delete of its id runs
 * waits for that delete first. A delete can take long (its share may be
 * away and the bridge riding the outage through): without the order, it
 * would cancel, or remove the files of, a retry that came after it.
 * Process-wide, thread-safe; entries are identified by a sequence number. */
#pragma once

#include <stdbool.h>

#define INFLIGHT_MAX 256
/* How long a delete waits for a cancelled creation to stop (it stops at
 * the end of the data copy at the latest), and a creation for a delete. */
#define INFLIGHT_WAIT_SECS 300

/* Register a creation (after the deletes of id in progress, waiting at
 * most wait_secs) or a delete of id. 0 with *ret_seq, or -EBUSY when the
 * table is full or a delete did not end in time. */
int inflight_begin(const char *id, bool deleting, unsigned wait_secs,
	unsigned long *ret_seq);
/* Remove entry seq and wake the waiters. */
void inflight_end(unsigned long seq);
/* Some creation or delete of id is registered. */
bool inflight_has(const char *id);
/* Whether the creation registered as seq (passed as a pointer, for
 * debug_gate) was cancelled. */
bool inflight_cancelled(void *seqp);
/* Cancel the creations of id that began before the delete seq, and wait
 * (at most wait_secs) until they have ended. */
void inflight_cancel_wait(const char *id, unsigned long seq, unsigned wait_secs);
