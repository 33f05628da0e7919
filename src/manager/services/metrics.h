/* Prometheus metrics of the manager (GET /metrics, text format 0.0.4;
 * docs/metrics.md lists every series). Counters and the clone histogram
 * live in memory here, fed by the HTTP server's observe hook and by the
 * services; gauges are read at scrape time from the registry and the
 * database. Counters start at zero with the process and only grow. Each
 * table has a fixed size: a series beyond it is not counted (and
 * nqrust_metrics_series_dropped_total says so). Thread-safe. */
#pragma once

#include <stddef.h>

struct manager;

/* http_server_opts.observe: one answered request (pattern NULL: no
 * route matched). */
void metrics_http_observe(void *userdata, const char *method, const char *pattern,
	int status);
/* Monotonic seconds, for durations. */
double metrics_now(void);
/* A clone of an image onto backend_id took seconds. */
void metrics_clone_observe(const char *backend_id, double seconds);
/* A probe of a backend failed with code (backend_id "" for a backend that
 * was being added and does not exist). */
void metrics_probe_failure(const char *backend_id, const char *kind, const char *code);
/* The whole exposition into *ret (malloc'd, NUL-terminated). -ENOMEM,
 * -EIO (database). */
int metrics_render(struct manager *m, char **ret, size_t *ret_len);
