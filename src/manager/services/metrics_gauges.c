/* The gauges of GET /metrics: backends from the registry's cache (status
 * and capacity as the refresher last saw them) and the database (volumes,
 * mounts per host), hosts and VMs from the database. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/manager.h"
#include "manager/services/metrics_internal.h"

/* name{l1="v1",l2="v2"} value: labels and values come in pairs, NULL
 * ends them. */
static void
series(FILE *f, const char *name, long long value, const char *l1, const char *v1,
	const char *l2, const char *v2, const char *l3, const char *v3, const char *l4,
	const char *v4)
{
	const char *l[] = { l1, l2, l3, l4 }, *v[] = { v1, v2, v3, v4 };

	fprintf(f, "%s{", name);
	for (int i = 0; i < 4 && l[i]; i++) {
		fprintf(f, "%s%s=\"", i ? "," : "", l[i]);
		metrics_label(f, v[i]);
		fputc('"', f);
	}
	fprintf(f, "} %lld\n", value);
}

static long long
num(const struct db_rows *rows, unsigned i, unsigned col)
{
	return strtoll(db_rows_get(rows, i, col) ?: "0", NULL, 10);
}

/* Row count of backend_id in rows of (backend_id, n). */
static long long
count_of(const struct db_rows *rows, const char *backend_id)
{
	for (unsigned i = 0; i < rows->nrows; i++)
		if (!strcmp(db_rows_get(rows, i, 0) ?: "", backend_id))
			return num(rows, i, 1);
	return 0;
}

static void
backend_capacity(FILE *f, const struct registry_item *it, size_t n)
{
	static const char *const names[] = { "nqrust_backend_capacity_total_bytes",
		"nqrust_backend_capacity_used_bytes",
		"nqrust_backend_capacity_available_bytes" };
	static const char *const help[] = { "Size of the backend's storage.",
		"Used space of the backend's storage: total - available.",
		"Space available to nqrust on the backend." };

	for (int k = 0; k < 3; k++) {
		metrics_head(f, names[k], "gauge", help[k]);
		for (size_t i = 0; i < n; i++) {
			const struct capacity *c = &it[i].st.cap;
			unsigned long long
				used = c->total_bytes > c->free_bytes
					       ? c->total_bytes - c->free_bytes
					       : 0;
			unsigned long long
				v = k == 0   ? c->total_bytes
				    : k == 1 ? used
					     : c->free_bytes;
			if (it[i].st.have_capacity)
				series(f, names[k], (long long)v, "backend", it[i].b->id,
					NULL, NULL, NULL, NULL, NULL, NULL);
		}
	}
}

static int
backends(struct manager *m, FILE *f)
{
	_cleanup_(db_rows_release) struct db_rows vols = { 0 }, mounts = { 0 };
	struct registry_item *it = NULL;
	size_t n = 0;

	if (db_query(m->db, "SELECT backend_id, COUNT(*) FROM volumes GROUP BY backend_id",
		    0, NULL, &vols) < 0 ||
		db_query(m->db,
			"SELECT backend_id, host_id, status FROM backend_hosts"
			" ORDER BY backend_id, host_id",
			0, NULL, &mounts) < 0)
		return -EIO;
	if (registry_snapshot(m->reg, &it, &n) < 0)
		return -ENOMEM;
	metrics_head(f, "nqrust_backends", "gauge", "Storage backends configured.");
	fprintf(f, "nqrust_backends %zu\n", n);
	metrics_head(f, "nqrust_backend_up", "gauge", "1 when the backend's status is ok.");
	for (size_t i = 0; i < n; i++)
		series(f, "nqrust_backend_up", !strcmp(it[i].st.status, "ok"), "backend",
			it[i].b->id, "name", it[i].b->name, "kind", it[i].b->ops->kind,
			NULL, NULL);
	metrics_head(f, "nqrust_backend_status", "gauge",
		"The backend's status: 1 on the series of its current status.");
	for (size_t i = 0; i < n; i++)
		series(f, "nqrust_backend_status", 1, "backend", it[i].b->id, "name",
			it[i].b->name, "kind", it[i].b->ops->kind, "status",
			it[i].st.status);
	backend_capacity(f, it, n);
	metrics_head(f, "nqrust_backend_volumes", "gauge", "Volumes on the backend.");
	for (size_t i = 0; i < n; i++)
		series(f, "nqrust_backend_volumes", count_of(&vols, it[i].b->id),
			"backend", it[i].b->id, NULL, NULL, NULL, NULL, NULL, NULL);
	registry_items_free(it, n);
	metrics_head(f, "nqrust_backend_mounts", "gauge",
		"Mounts of the backend per host: 1 when attached there and ok.");
	for (unsigned i = 0; i < mounts.nrows; i++)
		series(f, "nqrust_backend_mounts",
			!strcmp(db_rows_get(&mounts, i, 2) ?: "", "ok"), "backend",
			db_rows_get(&mounts, i, 0), "host", db_rows_get(&mounts, i, 1),
			NULL, NULL, NULL, NULL);
	return 0;
}

static int
hosts(struct manager *m, FILE *f)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	static const char *const gauges[][2] = {
		{ "nqrust_host_cpus", "CPUs of the host." },
		{ "nqrust_host_memory_total_bytes",
			"Memory of the host, as its agent says." },
		{ "nqrust_host_memory_free_bytes",
			"Free memory of the host, as its agent says." },
		{ "nqrust_host_vms", "VMs placed on the host (any state)." },
	};

	if (db_query(m->db,
		    "SELECT h.id, h.name, h.unreachable_since, h.last_seen, h.draining,"
		    " h.cpus, h.memory_mib, h.memory_free_mib,"
		    " (SELECT COUNT(*) FROM vms v WHERE v.host_id = h.id)"
		    " FROM hosts h ORDER BY h.name",
		    0, NULL, &rows) < 0)
		return -EIO;
	metrics_head(f, "nqrust_host_status", "gauge",
		"The host's status (ok, draining, unreachable): 1 on its current one.");
	for (unsigned i = 0; i < rows.nrows; i++) {
		const char *st = num(&rows, i, 2) || !num(&rows, i, 3) ? "unreachable"
				 : num(&rows, i, 4)                    ? "draining"
								       : "ok";
		series(f, "nqrust_host_status", 1, "host", db_rows_get(&rows, i, 0),
			"name", db_rows_get(&rows, i, 1), "status", st, NULL, NULL);
	}
	for (unsigned k = 0; k < ARRAY_SIZE(gauges); k++) {
		metrics_head(f, gauges[k][0], "gauge", gauges[k][1]);
		for (unsigned i = 0; i < rows.nrows; i++) {
			long long v = num(&rows, i, 5 + k);
			if (k == 1 || k == 2)
				v *= 1024 * 1024;
			series(f, gauges[k][0], v, "host", db_rows_get(&rows, i, 0), NULL,
				NULL, NULL, NULL, NULL, NULL);
		}
	}
	return 0;
}

static int
vms(struct manager *m, FILE *f)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	long long now = (long long)time(NULL);

	if (db_query(m->db,
		    "SELECT id, name, COALESCE(host_id, ''), state, state_changed_at,"
		    " updated_at FROM vms ORDER BY name",
		    0, NULL, &rows) < 0)
		return -EIO;
	metrics_head(f, "nqrust_vm_state", "gauge",
		"The VM's state (provisioning, running, stopping, stopped, error,"
		" migrating): 1 on its current one.");
	for (unsigned i = 0; i < rows.nrows; i++)
		series(f, "nqrust_vm_state", 1, "vm", db_rows_get(&rows, i, 0), "name",
			db_rows_get(&rows, i, 1), "host", db_rows_get(&rows, i, 2),
			"state", db_rows_get(&rows, i, 3));
	metrics_head(f, "nqrust_vm_uptime_seconds", "gauge",
		"Seconds since a running VM entered state running.");
	for (unsigned i = 0; i < rows.nrows; i++) {
		long long since = num(&rows, i, 4) ? num(&rows, i, 4) : num(&rows, i, 5);
		if (strcmp(db_rows_get(&rows, i, 3) ?: "", "running") != 0)
			continue;
		series(f, "nqrust_vm_uptime_seconds",
			since && now > since ? now - since : 0, "vm",
			db_rows_get(&rows, i, 0), "name", db_rows_get(&rows, i, 1), NULL,
			NULL, NULL, NULL);
	}
	return 0;
}

int
metrics_gauges(struct manager *m, FILE *f)
{
	int r = backends(m, f);

	if (r >= 0)
		r = hosts(m, f);
	if (r >= 0)
		r = vms(m, f);
	return r;
}
