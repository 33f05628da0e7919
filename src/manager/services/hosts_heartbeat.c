/* The heartbeat: GET /v1/host on every host, all at once (one thread per
 * host), each under a short timeout, so a dead host costs its own timeout
 * and never delays the others. The answers go to the hosts table;
 * requests read the table only. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/validate.h"
#include "manager/manager.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/reconciler.h"
#include "manager/services/hosts_internal.h"

#define HEARTBEAT_TIMEOUT_MS 3000
#define HEARTBEAT_MAX_HOSTS 128
/* The agent reports at most this many (docs/agent-api.md). */
#define HOST_IMAGES_MAX 1000

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

static void
num(json_t *info, const char *key, char buf[24])
{
	json_t *v = json_object_get(info, key);

	snprintf(buf, 24, "%lld",
		json_is_integer(v) ? (long long)json_integer_value(v) : 0LL);
}

/* The agent's image names '\n'-joined (malloc'd; "" for none), or NULL
 * when it reported no list (an older agent). Each name is checked again
 * here: one that is not a valid image name is dropped, so the column only
 * ever holds names placement can compare. */
static char *
join_images(json_t *arr)
{
	size_t i, pos = 0, cap;
	char *buf;
	json_t *v;

	if (!json_is_array(arr))
		return NULL;
	cap = (json_array_size(arr) < HOST_IMAGES_MAX ? json_array_size(arr)
						      : HOST_IMAGES_MAX) *
		      130 +
	      1;
	buf = malloc(cap);
	if (!buf)
		return NULL;
	buf[0] = '\0';
	json_array_foreach(arr, i, v) {
		const char *s = json_string_value(v);
		if (i >= HOST_IMAGES_MAX)
			break;
		if (validate_image_name("images", s, NULL) < 0)
			continue;
		pos += (size_t)snprintf(buf + pos, cap - pos, "%s%s", pos ? "\n" : "", s);
	}
	return buf;
}

int
hosts_record_info(struct manager *m, const char *id, json_t *info)
{
	char kinds[256], hv[256], cpus[24], mem[24], fr[24], lease[24], now[24];
	const char *aid = json_string_value(json_object_get(info, "agent_id"));

	join_strings(json_object_get(info, "backend_kinds"), kinds, sizeof kinds);
	join_strings(json_object_get(info, "hypervisors"), hv, sizeof hv);
	num(info, "cpus", cpus);
	num(info, "memory_mib", mem);
	num(info, "memory_free_mib", fr);
	num(info, "lease_seconds", lease);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	_cleanup_free_ char *images = join_images(json_object_get(info, "images"));
	const char *p[] = { id, kinds, hv, cpus, mem, fr, lease, now, aid ? aid : "",
		images };
	/* The local host learns its agent id here; an enrolled host's was
	 * recorded at enrollment and is what the heartbeat checks. */
	return db_exec(m->db,
		"UPDATE hosts SET backend_kinds = $2, hypervisors = $3, cpus = $4,"
		" memory_mib = $5, memory_free_mib = $6, lease_seconds = $7,"
		" last_seen = $8, unreachable_since = 0, last_error = '',"
		" agent_id = CASE WHEN id = 'local' THEN $9 ELSE agent_id END,"
		" images = $10 WHERE id = $1",
		10, p, NULL);
}

static void
record_failure(struct manager *m, const char *id, const struct nq_error *err)
{
	char now[24];
	const char *p[] = { id, now, err->message[0] ? err->message : err->code };

	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	if (db_exec(m->db,
		    "UPDATE hosts SET unreachable_since = CASE WHEN unreachable_since = 0"
		    " THEN $2 ELSE unreachable_since END, last_error = $3 WHERE id = $1",
		    3, p, NULL) < 0)
		log_warn("cannot record host status id=%s", id);
}

/* A different agent answering at a host's address is not that host. */
static int
check_identity(struct manager *m, const char *id, json_t *info, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *aid = json_string_value(json_object_get(info, "agent_id"));
	const char *p[] = { id };

	if (!strcmp(id, HOST_LOCAL_ID) ||
		db_query(m->db, "SELECT agent_id FROM hosts WHERE id = $1", 1, p, &rows) <
			0 ||
		rows.nrows == 0)
		return 0;
	const char *want = db_rows_get(&rows, 0, 0) ?: "";
	if (*want && (!aid || strcmp(aid, want) != 0))
		return nq_error_setr(err, -EPROTO, "agent_unavailable", NULL,
			"a different agent (%.64s) answers at this host's address",
			aid ? aid : "unknown");
	return 0;
}

int
hosts_heartbeat_one(struct manager *m, const char *id, long timeout_ms,
	struct nq_error *err)
{
	struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	int r;

	r = hosts_env(m, id, &env, err);
	if (r >= 0) {
		r = agent_call(env.agent, "GET", "/v1/host", NULL, 0, timeout_ms, &rep,
			err);
		hosts_env_release(&env);
	}
	/* Events host.unreachable / host.recovered on each flip (reconciler.h). */
	if (r >= 0 && (r = check_identity(m, id, rep.json, err)) >= 0)
		reconciler_reachability(m, id, true, NULL);
	if (r >= 0 && (r = hosts_record_info(m, id, rep.json)) < 0)
		nq_error_set(err, "internal_error", NULL, "database error");
	agent_reply_release(&rep);
	if (r < 0 && r != -ENOENT && strcmp(err->code, "internal_error") != 0)
		reconciler_reachability(m, id, false,
			err->message[0] ? err->message : err->code);
	if (r < 0 && r != -ENOENT)
		record_failure(m, id, err);
	return r;
}

struct beat {
	struct manager *m;
	char id[64];
	pthread_t t;
	bool started;
};

static void *
beat_main(void *arg)
{
	struct beat *b = arg;
	struct nq_error err = { 0 };

	if (hosts_heartbeat_one(b->m, b->id, HEARTBEAT_TIMEOUT_MS, &err) < 0)
		log_debug("host heartbeat failed id=%s code=%s", b->id, err.code);
	return NULL;
}

void
hosts_heartbeat_all(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct beat *beats;
	unsigned n;

	if (db_query(m->db, "SELECT id FROM hosts ORDER BY id", 0, NULL, &rows) < 0)
		return;
	n = rows.nrows < HEARTBEAT_MAX_HOSTS ? rows.nrows : HEARTBEAT_MAX_HOSTS;
	beats = calloc(n ? n : 1, sizeof *beats);
	if (!beats)
		return;
	for (unsigned i = 0; i < n; i++) {
		beats[i].m = m;
		snprintf(beats[i].id, sizeof beats[i].id, "%s", db_rows_get(&rows, i, 0));
		beats[i].started = pthread_create(&beats[i].t, NULL, beat_main,
					   &beats[i]) == 0;
		if (!beats[i].started)
			beat_main(&beats[i]);
	}
	for (unsigned i = 0; i < n; i++)
		if (beats[i].started)
			pthread_join(beats[i].t, NULL);
	free(beats);
}
