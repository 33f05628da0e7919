/* Run a blocking file-system call (statvfs, a probe write, a health check)
 * under a deadline, so that a dead or hung SMB server cannot wedge a
 * request thread forever, and without piling up threads on it.
 *
 * Each call runs in a worker thread. A call that outlives its deadline is
 * abandoned: the caller gets -ETIMEDOUT and the worker, if the kernel ever
 * lets it return, frees its own copy of the context. The number of workers
 * is bounded twice:
 *   - per key (a mount point): at most one call in flight. A second call
 *     on the key waits for the first (within its own deadline); when the
 *     first was abandoned and is still stuck, the second returns -EBUSY at
 *     once instead of sending one more request into the hung mount;
 *   - process-wide: at most deadline_cap() workers; beyond that -EAGAIN.
 * So a hung server costs at most one thread per mount, whatever the number
 * of health checks and capacity queries aimed at it. */
#pragma once

#include <stddef.h>

#define DEADLINE_DEFAULT_CAP 32
#define DEADLINE_KEY_MAX 4096

/* fn gets a private copy of ctx (ctxsz bytes, no pointers into the caller's
 * stack); when it finishes in time, the copy is written back to ctx and
 * fn's return value is returned. key names the resource (non-empty, at
 * most DEADLINE_KEY_MAX - 1 bytes; -EINVAL otherwise). */
int deadline_run(const char *key, int (*fn)(void *ctx), void *ctx, size_t ctxsz,
	int timeout_ms);
/* deadline_run for an operator's request (taking a lease to start a VM):
 * a stuck call on key (say a statvfs from an outage that just ended) is
 * waited for within timeout_ms instead of failing at once with -EBUSY;
 * still no second worker is sent into the mount meanwhile. */
int deadline_run_patient(const char *key, int (*fn)(void *ctx), void *ctx, size_t ctxsz,
	int timeout_ms);
/* Workers alive now: running, or abandoned and still stuck. */
unsigned deadline_inflight(void);
/* Workers of key that were abandoned and are still stuck (0 or 1). */
unsigned deadline_stuck(const char *key);
/* The process-wide cap (1..1024), for tests and configuration. */
void deadline_set_cap(unsigned cap);
unsigned deadline_cap(void);
