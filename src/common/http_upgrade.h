/* Private to the HTTP server (http_server.c): upgraded connections. */
#pragma once

#include <microhttpd.h>

#include "common/http_server.h"

/* The 101 response for r (r->upgrade set); takes r->upgrade_ctx. NULL on
 * failure (r keeps its ctx). */
struct MHD_Response *http_upgrade_response(struct http_response *r);
/* Turn every session's stopping flag true and wait (up to 10 s) for them
 * to end. */
void http_upgrades_stop(void);
