/* The manager's REST API: one route table per resource, each in its own
 * routes_<resource>.c. A handler parses strictly into a typed struct and
 * calls a service (services/, auth/); it never touches db/ or a backend
 * kind. main.c assembles the tables in this order. */
#pragma once

#include <stddef.h>

#include "common/http_server.h"

/* /healthz and /metrics on the API listener (/metrics needs a token
 * there); metrics_routes serve the separate --metrics-listen address
 * (routes_metrics.c). */
extern const struct http_route misc_routes[];
extern const size_t misc_routes_count;
extern const struct http_route metrics_routes[];
extern const size_t metrics_routes_count;
extern const struct http_route auth_routes[]; /* routes_auth.c */
extern const size_t auth_routes_count;
extern const struct http_route storage_routes[]; /* routes_storage.c */
extern const size_t storage_routes_count;
/* A backend's base cache (routes_cache.c), in storage_routes. */
void routes_get_backend_cache(struct http_request *req, struct http_response *resp);
void routes_delete_backend_cache(struct http_request *req, struct http_response *resp);
extern const struct http_route volume_routes[]; /* routes_volumes.c */
extern const size_t volume_routes_count;
extern const struct http_route vm_routes[]; /* routes_vms.c */
extern const size_t vm_routes_count;
extern const struct http_route snapshot_routes[]; /* routes_snapshots.c */
extern const size_t snapshot_routes_count;
extern const struct http_route console_routes[]; /* routes_console.c */
extern const size_t console_routes_count;
extern const struct http_route image_routes[]; /* routes_images.c */
extern const size_t image_routes_count;
extern const struct http_route host_routes[]; /* routes_hosts.c */
extern const size_t host_routes_count;
extern const struct http_route user_routes[]; /* routes_users.c */
extern const size_t user_routes_count;
extern const struct http_route event_routes[]; /* routes_events.c */
extern const size_t event_routes_count;
/* GET "/", "/index.html", "/assets/…", "/docs/…" (routes_ui.c): prefix
 * routes, list them last. */
extern const struct http_route ui_routes[];
extern const size_t ui_routes_count;

/* The authentication hook of the API server (routes_auth.c): bearer token
 * or session cookie, and X-CSRF-Token on cookie-authenticated writes. */
int mgr_auth_hook(struct http_request *req, struct http_response *resp);
