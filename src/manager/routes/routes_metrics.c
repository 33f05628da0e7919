/* GET /healthz and /metrics (Prometheus text: backends and their status
 * from the registry's cache). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager.h"
#include "manager/routes/routes.h"

static void
healthz(struct http_request *req, struct http_response *resp)
{
	(void)req;
	http_reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static void
metrics(struct http_request *req, struct http_response *resp)
{
	struct manager *m = req->userdata;
	struct registry_item *items = NULL;
	char *buf = NULL;
	size_t n = 0, len = 0;
	FILE *f = open_memstream(&buf, &len);

	if (!f || registry_snapshot(m->reg, &items, &n) < 0) {
		if (f)
			fclose(f);
		free(buf);
		http_reply_errorf(resp, "internal_error", NULL, "out of memory");
		return;
	}
	fprintf(f, "# TYPE nqrust_backends gauge\nnqrust_backends %zu\n", n);
	fprintf(f, "# TYPE nqrust_backend_up gauge\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "nqrust_backend_up{id=\"%s\",kind=\"%s\"} %d\n", items[i].b->id,
			items[i].b->ops->kind, strcmp(items[i].st.status, "ok") == 0);
	fclose(f);
	registry_items_free(items, n);
	free(resp->body);
	resp->status = 200;
	resp->body = buf;
	resp->body_len = len;
	resp->content_type = "text/plain; version=0.0.4";
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
