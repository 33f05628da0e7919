/* GET /healthz and /metrics (Prometheus text format 0.0.4, built by
 * services/metrics.c; docs/metrics.md lists the series). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager.h"
#include "manager/routes/routes.h"
#include "manager/services/metrics.h"

static void
healthz(struct http_request *req, struct http_response *resp)
{
	(void)req;
	http_reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static void
metrics(struct http_request *req, struct http_response *resp)
{
	char *buf = NULL;
	size_t len = 0;
	int r = metrics_render(req->userdata, &buf, &len);

	if (r < 0) {
		http_reply_errorf(resp, "internal_error", NULL, "%s",
			r == -ENOMEM ? "out of memory" : "database error");
		return;
	}
	free(resp->body);
	resp->status = 200;
	resp->body = buf;
	resp->body_len = len;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

/* On the API listener /metrics needs a token like any /v1 route; an
 * operator who wants unauthenticated scraping binds --metrics-listen to
 * an address only the scraper reaches, served by metrics_routes alone. */
const struct http_route misc_routes[] = {
	{ "GET", "/healthz", healthz, ROUTE_NO_AUTH, 0, NULL },
	{ "GET", "/metrics", metrics, 0, 0, NULL },
};

const struct http_route metrics_routes[] = {
	{ "GET", "/metrics", metrics, ROUTE_NO_AUTH, 0, NULL },
	{ "GET", "/healthz", healthz, ROUTE_NO_AUTH, 0, NULL },
};
const size_t misc_routes_count = ARRAY_SIZE(misc_routes);
const size_t metrics_routes_count = ARRAY_SIZE(metrics_routes);
