/* Test-only pause points. When the environment variable
 * NQRUST_DEBUG_GATE_DIR names a directory and the file <dir>/<step>.wait
 * exists when a daemon reaches the point <step>, the daemon creates
 * <dir>/<step>.reached and waits until <step>.wait is removed (or until
 * cancelled() says so). Without the variable, or without the .wait file,
 * a gate costs one getenv. Integration tests use this to stop an
 * operation at an exact step (say, in the middle of a clone) instead of
 * relying on its slowness. Step names are fixed strings in the code;
 * nothing from a request ever names a file here. */
#pragma once

#include <stdbool.h>

/* Returns true when the wait ended because cancelled(arg) turned true. */
bool debug_gate(const char *step, bool (*cancelled)(void *arg), void *arg);
/* True when NQRUST_DEBUG_GATE_DIR is set (the daemons warn at start). */
bool debug_gate_enabled(void);
