/* See metrics.h. The gauges are in metrics_gauges.c. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/macro.h"
#include "manager/manager.h"
#include "manager/services/metrics.h"
#include "manager/services/metrics_internal.h"

#define HTTP_SERIES_MAX 512
#define CLONE_SERIES_MAX 256
#define PROBE_SERIES_MAX 512
#define LABEL_MAX 128

static const double clone_buckets[] = { 0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600 };
#define NBUCKETS ARRAY_SIZE(clone_buckets)

struct http_series {
	char method[12], route[LABEL_MAX];
	int status;
	unsigned long long n;
};

struct clone_series {
	char backend[LABEL_MAX];
	unsigned long long buckets[NBUCKETS]; /* non-cumulative */
	unsigned long long count;
	double sum;
};

struct probe_series {
	char backend[LABEL_MAX], kind[32], code[64];
	unsigned long long n;
};

static struct {
	pthread_mutex_t lock;
	struct http_series http[HTTP_SERIES_MAX];
	size_t nhttp;
	struct clone_series clone[CLONE_SERIES_MAX];
	size_t nclone;
	struct probe_series probe[PROBE_SERIES_MAX];
	size_t nprobe;
	unsigned long long dropped;
} M = { .lock = PTHREAD_MUTEX_INITIALIZER };

double
metrics_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void
metrics_http_observe(void *userdata, const char *method, const char *pattern, int status)
{
	const char *route = pattern ? pattern : "unmatched";
	size_t i;

	(void)userdata;
	pthread_mutex_lock(&M.lock);
	for (i = 0; i < M.nhttp; i++)
		if (M.http[i].status == status && !strcmp(M.http[i].route, route) &&
			!strcmp(M.http[i].method, method))
			break;
	if (i == M.nhttp && i < HTTP_SERIES_MAX) {
		snprintf(M.http[i].method, sizeof M.http[i].method, "%s", method);
		snprintf(M.http[i].route, sizeof M.http[i].route, "%s", route);
		M.http[i].status = status;
		M.nhttp++;
	}
	if (i < M.nhttp)
		M.http[i].n++;
	else
		M.dropped++;
	pthread_mutex_unlock(&M.lock);
}

void
metrics_clone_observe(const char *backend_id, double seconds)
{
	size_t i, b;

	pthread_mutex_lock(&M.lock);
	for (i = 0; i < M.nclone; i++)
		if (!strcmp(M.clone[i].backend, backend_id))
			break;
	if (i == M.nclone && i < CLONE_SERIES_MAX) {
		snprintf(M.clone[i].backend, sizeof M.clone[i].backend, "%s", backend_id);
		M.nclone++;
	}
	if (i < M.nclone) {
		for (b = 0; b < NBUCKETS && seconds > clone_buckets[b]; b++)
			;
		if (b < NBUCKETS)
			M.clone[i].buckets[b]++;
		M.clone[i].count++;
		M.clone[i].sum += seconds;
	} else {
		M.dropped++;
	}
	pthread_mutex_unlock(&M.lock);
}

void
metrics_probe_failure(const char *backend_id, const char *kind, const char *code)
{
	size_t i;

	pthread_mutex_lock(&M.lock);
	for (i = 0; i < M.nprobe; i++)
		if (!strcmp(M.probe[i].backend, backend_id) &&
			!strcmp(M.probe[i].code, code) && !strcmp(M.probe[i].kind, kind))
			break;
	if (i == M.nprobe && i < PROBE_SERIES_MAX) {
		snprintf(M.probe[i].backend, sizeof M.probe[i].backend, "%s", backend_id);
		snprintf(M.probe[i].kind, sizeof M.probe[i].kind, "%s", kind);
		snprintf(M.probe[i].code, sizeof M.probe[i].code, "%s", code);
		M.nprobe++;
	}
	if (i < M.nprobe)
		M.probe[i].n++;
	else
		M.dropped++;
	pthread_mutex_unlock(&M.lock);
}

void
metrics_label(FILE *f, const char *v)
{
	for (; v && *v; v++) {
		if (*v == '\\')
			fputs("\\\\", f);
		else if (*v == '"')
			fputs("\\\"", f);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

void
metrics_head(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
render_http(FILE *f)
{
	metrics_head(f, "nqrust_http_requests_total", "counter",
		"HTTP requests answered, by method, route template and status code.");
	for (size_t i = 0; i < M.nhttp; i++) {
		fprintf(f, "nqrust_http_requests_total{method=\"");
		metrics_label(f, M.http[i].method);
		fprintf(f, "\",route=\"");
		metrics_label(f, M.http[i].route);
		fprintf(f, "\",code=\"%d\"} %llu\n", M.http[i].status, M.http[i].n);
	}
}

static void
render_clone(FILE *f)
{
	metrics_head(f, "nqrust_backend_clone_duration_seconds", "histogram",
		"Time to clone a base image into a new volume, by backend.");
	for (size_t i = 0; i < M.nclone; i++) {
		unsigned long long cum = 0;
		for (size_t b = 0; b < NBUCKETS; b++) {
			cum += M.clone[i].buckets[b];
			fprintf(f,
				"nqrust_backend_clone_duration_seconds_bucket{backend=\"");
			metrics_label(f, M.clone[i].backend);
			fprintf(f, "\",le=\"%g\"} %llu\n", clone_buckets[b], cum);
		}
		fprintf(f, "nqrust_backend_clone_duration_seconds_bucket{backend=\"");
		metrics_label(f, M.clone[i].backend);
		fprintf(f, "\",le=\"+Inf\"} %llu\n", M.clone[i].count);
		fprintf(f, "nqrust_backend_clone_duration_seconds_sum{backend=\"");
		metrics_label(f, M.clone[i].backend);
		fprintf(f, "\"} %.6f\n", M.clone[i].sum);
		fprintf(f, "nqrust_backend_clone_duration_seconds_count{backend=\"");
		metrics_label(f, M.clone[i].backend);
		fprintf(f, "\"} %llu\n", M.clone[i].count);
	}
}

static void
render_probe(FILE *f)
{
	metrics_head(f, "nqrust_backend_probe_failures_total", "counter",
		"Failed probes of a backend (add, attach, status check), by error code.");
	for (size_t i = 0; i < M.nprobe; i++) {
		fprintf(f, "nqrust_backend_probe_failures_total{backend=\"");
		metrics_label(f, M.probe[i].backend);
		fprintf(f, "\",kind=\"");
		metrics_label(f, M.probe[i].kind);
		fprintf(f, "\",code=\"");
		metrics_label(f, M.probe[i].code);
		fprintf(f, "\"} %llu\n", M.probe[i].n);
	}
}

int
metrics_render(struct manager *m, char **ret, size_t *ret_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int r;

	if (!f)
		return -ENOMEM;
	r = metrics_gauges(m, f);
	pthread_mutex_lock(&M.lock);
	render_http(f);
	render_clone(f);
	render_probe(f);
	metrics_head(f, "nqrust_metrics_series_dropped_total", "counter",
		"Observations not counted because a metrics table was full.");
	fprintf(f, "nqrust_metrics_series_dropped_total %llu\n", M.dropped);
	pthread_mutex_unlock(&M.lock);
	if (fclose(f) != 0 || r < 0) {
		free(buf);
		return r < 0 ? r : -ENOMEM;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}
