/* Run a blocking file-system call (statvfs, a probe write) under a deadline
 * so that a dead SMB server cannot wedge a request thread forever. The work
 * runs in a detached thread; on timeout the caller gets -ETIMEDOUT and the
 * thread, if it ever returns, frees its own copy of the context. */
#pragma once

#include <stddef.h>

/* fn gets a private copy of ctx (ctxsz bytes, no pointers into the caller's
 * stack); when it finishes in time, the copy is written back to ctx and
 * fn's return value is returned. */
int deadline_run(int (*fn)(void *ctx), void *ctx, size_t ctxsz, int timeout_ms);
