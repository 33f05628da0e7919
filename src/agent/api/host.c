/* GET /v1/host: who this agent is and what it offers, for the manager's
 * host record (enrollment, placement, heartbeat). */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/http_server.h"
#include "agent/api/api.h"
#include "agent/storage/kind.h"
#include "agent/storage/volumes.h"
#include "agent/vmm/vms.h"

/* At most this many image names in GET /v1/host (docs/agent-api.md). */
#define HOST_IMAGES_MAX 1000

#ifndef NQRUST_VERSION
#define NQRUST_VERSION "unknown"
#endif

/* MemTotal and MemAvailable from /proc/meminfo, in MiB (0 when absent). */
static void
read_meminfo(long long *ret_total, long long *ret_avail)
{
	FILE *f = fopen("/proc/meminfo", "re");
	char line[256];
	long long kib;

	*ret_total = *ret_avail = 0;
	if (!f)
		return;
	while (fgets(line, sizeof line, f)) {
		if (sscanf(line, "MemTotal: %lld kB", &kib) == 1)
			*ret_total = kib / 1024;
		else if (sscanf(line, "MemAvailable: %lld kB", &kib) == 1)
			*ret_avail = kib / 1024;
	}
	fclose(f);
}

/* Real figures, or with --report-memory-mib N: N, and N less the memory of
 * the VMs that run here (never below 0). */
static void
memory_figures(struct agent *a, long long *ret_total, long long *ret_free)
{
	if (a->cfg.report_memory_mib == 0) {
		read_meminfo(ret_total, ret_free);
		return;
	}
	long long total = a->cfg.report_memory_mib;
	long long used = (long long)vms_memory_committed(a);
	*ret_total = total;
	*ret_free = used >= total ? 0 : total - used;
}

/* The names of the regular files in the image dir (what GET /v1/images
 * lists), at most HOST_IMAGES_MAX of them: placement checks a VM's boot
 * files against it. An unreadable dir reports none. */
static json_t *
image_names(struct agent *a)
{
	json_t *list = NULL, *names = json_array(), *v;
	size_t i;

	if (!names || images_list(a, &list) < 0)
		return names;
	json_array_foreach(list, i, v) {
		if (json_array_size(names) >= HOST_IMAGES_MAX)
			break;
		json_array_append(names, json_object_get(v, "name"));
	}
	json_decref(list);
	return names;
}

void
api_get_host(struct http_request *req, struct http_response *resp)
{
	struct agent *a = AGENT(req);
	json_t *hv = json_array(), *kinds = json_array();
	const struct storage_kind_ops *k;
	long long total, avail, cpus = sysconf(_SC_NPROCESSORS_ONLN);

	if (access(a->cfg.firecracker_path, X_OK) == 0)
		json_array_append_new(hv, json_string("firecracker"));
	if (access(a->cfg.qemu_path, X_OK) == 0)
		json_array_append_new(hv, json_string("qemu"));
	for (size_t i = 0; (k = storage_kind_at(i)); i++)
		json_array_append_new(kinds, json_string(k->name));
	memory_figures(a, &total, &avail);
	json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:o, s:o, s:s, s:o, s:i, s:s}",
		"agent_id", a->agent_id, "name", a->host_name, "cpus",
		(json_int_t)(cpus > 0 ? cpus : 1), "memory_mib", (json_int_t)total,
		"memory_free_mib", (json_int_t)avail, "backend_kinds", kinds, "hypervisors",
		hv, "default_hypervisor", vms_default_hypervisor(a), "tls_fingerprint",
		a->tls_fingerprint[0] ? json_string(a->tls_fingerprint) : json_null(),
		"lease_seconds", (int)a->cfg.lease_seconds, "version", NQRUST_VERSION);
	if (o)
		json_object_set_new(o, "images", image_names(a));
	http_reply_json(resp, 200, o);
}
