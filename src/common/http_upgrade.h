/* Private to the HTTP server (http_server.c): upgraded connections. */
#pragma once

#include <microhttpd.h>

#include "common/http_server.h"

struct http_upgrade_job;

/* The 101 response for r (r->upgrade set); takes r->upgrade_ctx. NULL on
 * failure (r keeps its ctx). *ret_job: the request's hold on the session,
 * given back with http_upgrade_request_done when the request completes. */
struct MHD_Response *http_upgrade_response(struct http_response *r,
	struct http_upgrade_job **ret_job);
/* The request of job completed (MHD calls that after the upgrade handler,
 * or instead of it when the client went away before the switch): a
 * session that never started is freed here. */
void http_upgrade_request_done(struct http_upgrade_job *job);
/* Turn every session's stopping flag true and wait (up to 10 s) for them
 * to end. */
void http_upgrades_stop(void);
