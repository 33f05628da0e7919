/* Hosts: the agent's self-description (GET /v1/host on the agent) kept in
 * the hosts table; hosts_list_json lists them for GET /v1/hosts. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "manager/services/hosts.h"
#include "common/log.h"
#include "manager/manager.h"

#define HOST_CALL_TIMEOUT_MS 5000

static void
join_strings(json_t *arr, char *buf, size_t sz)
{
	size_t i, pos = 0;
	json_t *v;

	buf[0] = '\0';
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);
		int n;
		if (!s || strchr(s, ','))
			continue;
		n = snprintf(buf + pos, sz - pos, "%s%s", pos ? "," : "", s);
		if (n < 0 || (size_t)n >= sz - pos)
			break;
		pos += (size_t)n;
	}
}

int
hosts_heartbeat(struct manager *m, struct host_info *ret, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	struct host_info h = { 0 };
	char now[24];
	int r;

	r = agent_call(m->env.agent, "GET", "/v1/host", NULL, 0, HOST_CALL_TIMEOUT_MS,
		&rep, err);
	if (r < 0) {
		agent_reply_release(&rep);
		return r;
	}
	snprintf(h.id, sizeof h.id, "%s", HOST_LOCAL_ID);
	join_strings(json_object_get(rep.json, "backend_kinds"), h.backend_kinds,
		sizeof h.backend_kinds);
	join_strings(json_object_get(rep.json, "hypervisors"), h.hypervisors,
		sizeof h.hypervisors);
	agent_reply_release(&rep);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	const char *p[] = { h.id, "local", m->cfg.agent, h.backend_kinds, h.hypervisors,
		now };
	r = db_exec(m->db,
		"INSERT INTO hosts (id, name, agent_url, created_at,"
		" backend_kinds, hypervisors, last_seen) VALUES ($1, $2, $3, $6, $4, $5, $6)"
		" ON CONFLICT (id) DO UPDATE SET agent_url = $3, backend_kinds = $4,"
		" hypervisors = $5, last_seen = $6",
		6, p, NULL);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (ret)
		*ret = h;
	return 0;
}

static bool
has_word(const char *list, const char *w)
{
	size_t l = strlen(w);

	for (const char *p = list; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, w, l) && (p[l] == ',' || p[l] == '\0'))
			return true;
	return false;
}

int
hosts_place(struct manager *m, const char *kind, struct host_info *ret,
	struct nq_error *err)
{
	struct host_info h;
	int r;

	/* The one agent we talk to answers now, or placement fails. */
	r = hosts_heartbeat(m, &h, err);
	if (r < 0)
		return r;
	if (!has_word(h.backend_kinds, kind))
		return nq_error_setr(err, -ENOENT, "no_host", "storage_backend_id",
			"no live host can run VMs on a %s backend (hosts support: %s)",
			kind, h.backend_kinds[0] ? h.backend_kinds : "none");
	if (!h.hypervisors[0])
		return nq_error_setr(err, -ENOENT, "no_host", NULL,
			"no live host has a hypervisor (firecracker or qemu) installed");
	*ret = h;
	return 0;
}

static json_t *
split_json(const char *s)
{
	json_t *arr = json_array();
	char buf[128], *save = NULL;

	snprintf(buf, sizeof buf, "%s", s ? s : "");
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
		json_array_append_new(arr, json_string(t));
	return arr;
}

json_t *
hosts_list_json(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	time_t now = time(NULL);
	json_t *arr;

	(void)hosts_heartbeat(m, NULL, NULL);
	if (db_query(m->db,
		    "SELECT id, name, agent_url, backend_kinds, hypervisors,"
		    " last_seen FROM hosts ORDER BY name",
		    0, NULL, &rows) < 0)
		return NULL;
	arr = json_array();
	for (unsigned i = 0; arr && i < rows.nrows; i++) {
		const char *seen_s = db_rows_get(&rows, i, 5);
		long long seen = seen_s ? strtoll(seen_s, NULL, 10) : 0;
		json_array_append_new(arr,
			json_pack("{s:s, s:s, s:s, s:o, s:o, s:I, s:s}", "id",
				db_rows_get(&rows, i, 0), "name", db_rows_get(&rows, i, 1),
				"address", db_rows_get(&rows, i, 2) ?: "", "backend_kinds",
				split_json(db_rows_get(&rows, i, 3)), "hypervisors",
				split_json(db_rows_get(&rows, i, 4)), "last_seen",
				(json_int_t)seen, "status",
				now - seen <= HOST_STALE_SECONDS ? "live" : "stale"));
	}
	return arr;
}
