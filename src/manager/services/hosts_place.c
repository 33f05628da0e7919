/* hosts_place: gather the host rows (DB), decide with place_choose
 * (placement.c), attach the backend on first use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/hosts.h"
#include "manager/services/hosts_internal.h"
#include "manager/services/placement.h"

#define PLACE_MAX_HOSTS 256
#define LOCAL_BEAT_MS 3000

/* id, name, reachability, draining, kinds, hypervisors, memory, the memory
 * of the VMs placed there that are not stopped (but the VM being placed),
 * the backend's status there ("" when not attached), the image dir's
 * names (NULL when never reported). */
#define PLACE_SQL                                                                         \
	"SELECT h.id, h.name, h.unreachable_since, h.last_seen, h.draining,"              \
	" h.backend_kinds, h.hypervisors, h.memory_mib,"                                  \
	" (SELECT COALESCE(SUM(v.memory_mib), 0) FROM vms v WHERE v.host_id = h.id"       \
	"  AND v.state NOT IN ('stopped', 'error') AND v.id <> $2),"                      \
	" COALESCE((SELECT bh.status FROM backend_hosts bh WHERE bh.backend_id = $1"      \
	"  AND bh.host_id = h.id), ''), h.images"                                         \
	" FROM hosts h ORDER BY CASE WHEN h.id = 'local' THEN 0 ELSE 1 END, h.name"

static void
row_host(const struct db_rows *rows, unsigned i, struct place_host *h)
{
	h->id = db_rows_get(rows, i, 0);
	h->name = db_rows_get(rows, i, 1);
	h->status = host_num(rows, i, 2) || !host_num(rows, i, 3) ? "unreachable" : "ok";
	h->draining = host_num(rows, i, 4) != 0;
	h->backend_kinds = db_rows_get(rows, i, 5) ?: "";
	h->hypervisors = db_rows_get(rows, i, 6) ?: "";
	h->memory_mib = host_num(rows, i, 7);
	h->used_mib = host_num(rows, i, 8);
	h->backend_status = db_rows_get(rows, i, 9) ?: "";
	h->images = db_rows_get(rows, i, 10); /* NULL: never reported */
}

static int
backend_need(struct manager *m, const char *bid, char kind[32], char owner[64],
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { bid };

	if (db_query(m->db, "SELECT kind, host_id FROM backends WHERE id = $1", 1, p,
		    &rows) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (rows.nrows == 0)
		return nq_error_setr(err, -ENOENT, "invalid_field", "storage_backend_id",
			"no backend with id %.64s", bid);
	snprintf(kind, 32, "%s", db_rows_get(&rows, 0, 0) ?: "");
	snprintf(owner, 64, "%s", db_rows_get(&rows, 0, 1) ?: "");
	/* A localfile backend from before hosts existed lives on the local host. */
	if (!owner[0] && !strcmp(kind, "localfile"))
		snprintf(owner, 64, "%s", HOST_LOCAL_ID);
	return 0;
}

static int
refuse(const struct place_req *q, int r, const char *why, struct nq_error *err)
{
	if (q->host_id)
		return nq_error_setr(err, r, "host_unsuitable", "host_id",
			"host %.64s cannot take this VM: %s", q->host_id, why);
	return nq_error_setr(err, r, "no_host", NULL, "no host can take this VM: %s", why);
}

/* An automatic choice for a new VM that fails only for want of its base
 * image, which no host has (that reported its image dir): the image is
 * unknown rather than the hosts unsuitable, as with one host. */
static bool
image_nowhere(const struct place_host *hosts, size_t n, const struct place_need *need)
{
	struct place_need without = *need;
	char why[256];

	if (need->host_id || !need->boot_image)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!hosts[i].images || place_names_has(hosts[i].images, need->boot_image))
			return false;
	without.boot_image = NULL;
	for (size_t i = 0; i < n; i++)
		if (place_host_fits(&hosts[i], &without, why, sizeof why))
			return true;
	return false;
}

/* One host, chosen automatically, that would take the VM but for its
 * memory: the request asks too much, which names the field (the operator
 * can do nothing about the host). */
static int
memory_only(const struct place_host *hosts, size_t n, const struct place_need *need,
	struct nq_error *err)
{
	struct place_need without = *need;
	char why[256];
	long long left;

	if (need->host_id || n != 1)
		return 0;
	without.memory_mib = 0;
	if (!place_host_fits(&hosts[0], &without, why, sizeof why))
		return 0;
	left = hosts[0].memory_mib - hosts[0].used_mib;
	return nq_error_setr(err, -ENOMEM, "insufficient_memory", "memory_mib",
		"memory_mib %u is more than host %s has free: %lld MiB", need->memory_mib,
		hosts[0].name ? hosts[0].name : hosts[0].id, left < 0 ? 0 : left);
}

int
hosts_place(struct manager *m, const struct place_req *q, char ret_host_id[64],
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct place_host hosts[PLACE_MAX_HOSTS];
	char kind[32], owner[64], why[1024];
	size_t n, idx;
	int r;

	r = backend_need(m, q->backend_id, kind, owner, err);
	if (r < 0)
		return r;
	/* The local agent answers over its unix socket at once: ask it now,
	 * as a one-host manager always did. Others come from the heartbeat. */
	if (!q->host_id || !strcmp(q->host_id, HOST_LOCAL_ID)) {
		struct nq_error berr = { 0 };
		(void)hosts_heartbeat_one(m, HOST_LOCAL_ID, LOCAL_BEAT_MS, &berr);
	}
	const char *p[] = { q->backend_id, q->vm_id ? q->vm_id : "" };
	if (db_query(m->db, PLACE_SQL, 2, p, &rows) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	n = rows.nrows < PLACE_MAX_HOSTS ? rows.nrows : PLACE_MAX_HOSTS;
	for (size_t i = 0; i < n; i++)
		row_host(&rows, (unsigned)i, &hosts[i]);
	const char *files[] = { q->kernel ? q->kernel : "", q->initrd ? q->initrd : "",
		NULL };
	struct place_need need = { kind, owner, q->memory_mib, q->host_id,
		q->exclude_host_id, q->image_id, files };
	r = place_choose(hosts, n, &need, &idx, why, sizeof why);
	if (r < 0 && image_nowhere(hosts, n, &need))
		return nq_error_setr(err, r, "image_not_found", "image_id",
			"no host has image %.128s in its image dir", q->image_id);
	if (r < 0 && memory_only(hosts, n, &need, err) < 0)
		return -ENOMEM;
	if (r < 0)
		return refuse(q, r, why, err);
	if (!hosts[idx].backend_status[0]) {
		struct nq_error aerr = { 0 };
		r = hosts_attach_backend(m, q->backend_id, hosts[idx].id, &aerr);
		if (r < 0) {
			snprintf(why, sizeof why,
				"the backend cannot be attached there: %s", aerr.message);
			return refuse(q, r, why, err);
		}
	}
	snprintf(ret_host_id, 64, "%s", hosts[idx].id);
	return 0;
}
