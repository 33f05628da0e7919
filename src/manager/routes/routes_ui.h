/* Static web UI and runbooks (routes_ui.c). */
#pragma once

#include <stdbool.h>

#include "manager/mgr_config.h"

/* Open the web and docs directories named by cfg (or the defaults). A
 * missing directory is logged and leaves the UI unserved (404); the API
 * does not depend on it. Call once before the server starts. */
int ui_init(const struct mgr_config *cfg);
/* Exposed for unit tests: true when rel is a safe relative UI path. */
bool ui_path_ok(const char *rel);
