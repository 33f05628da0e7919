/* See hostpool.h. The built-in host "local" is the manager's --agent
 * client; every other host gets a client built from its row (agent_url,
 * pinned fingerprint) and its sealed token, cached here and rebuilt when
 * the row or the token changes. The cache is only a cache: the database
 * says what a host is, so another manager on the same database agrees. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/services/hostpool.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/hosts.h"
#include "manager/services/secrets.h"

#define POOL_MAX 256

struct pool_entry {
	char id[64];
	char key[1200]; /* url|fingerprint|token generation|updated_at */
	struct agent_client *client;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pool_entry pool[POOL_MAX];

/* A new client for the row: https only, pinned, with the unsealed token. */
static int
build(struct manager *m, const char *id, const char *url, const char *fp,
	struct agent_client **ret, struct nq_error *err)
{
	_cleanup_secret_ struct secret *tok = NULL;
	char sid[96];
	int r;

	if (strncmp(url, "https://", 8) != 0)
		return nq_error_setr(err, -EPERM, "agent_unavailable", "host_id",
			"host %.64s: agent_url must be https://", id);
	secrets_id(sid, sizeof sid, "host", id);
	r = secrets_get(m, sid, &tok, NULL);
	if (r < 0)
		return nq_error_setr(err, r, "agent_auth_failed", "host_id",
			"host %.64s: its token cannot be read (%s)", id,
			r == -EBADMSG ? "another secret key?" : "missing");
	r = agent_client_new(url, tok->buf, ret);
	if (r >= 0 && (r = agent_client_set_pin(*ret, fp)) < 0)
		agent_client_free(*ret);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", "host_id",
			"host %.64s: cannot build its agent client", id);
	return 0;
}

/* The cached client for id under key, or a new one put in the cache. */
static int
pool_get(struct manager *m, const char *id, const char *key, const char *url,
	const char *fp, struct agent_client **ret, struct nq_error *err)
{
	struct pool_entry *free_slot = NULL, *e = NULL;
	int r = 0;

	pthread_mutex_lock(&pool_lock);
	for (size_t i = 0; i < POOL_MAX && !e; i++) {
		if (!strcmp(pool[i].id, id))
			e = &pool[i];
		else if (!pool[i].id[0] && !free_slot)
			free_slot = &pool[i];
	}
	if (e && strcmp(e->key, key) != 0) {
		agent_client_free(e->client);
		e->client = NULL;
	}
	if (!e)
		e = free_slot;
	if (!e)
		r = nq_error_setr(err, -ENOSPC, "internal_error", NULL, "too many hosts");
	else if (!e->client && (r = build(m, id, url, fp, &e->client, err)) >= 0) {
		snprintf(e->id, sizeof e->id, "%s", id);
		snprintf(e->key, sizeof e->key, "%s", key);
	} else if (!e->client) {
		e->id[0] = '\0';
	}
	if (r >= 0)
		*ret = agent_client_ref(e->client);
	pthread_mutex_unlock(&pool_lock);
	return r;
}

int
hosts_env(struct manager *m, const char *host_id, struct backend_env *ret,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { host_id };
	char key[1200];
	int r;

	if (!host_id || !*host_id || !strcmp(host_id, HOST_LOCAL_ID)) {
		*ret = m->env;
		ret->agent = agent_client_ref(m->env.agent);
		return 0;
	}
	r = db_query(m->db,
		"SELECT h.agent_url, h.fingerprint, s.generation, s.updated_at FROM hosts h"
		" LEFT JOIN secrets s ON s.id = 'host:' || h.id WHERE h.id = $1",
		1, p, &rows);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	if (rows.nrows == 0)
		return nq_error_setr(err, -ENOENT, "not_found", "host_id",
			"no host with id %.64s", host_id);
	const char *url = db_rows_get(&rows, 0, 0) ?: "",
		   *fp = db_rows_get(&rows, 0, 1) ?: "";
	snprintf(key, sizeof key, "%s|%s|%s|%s", url, fp, db_rows_get(&rows, 0, 2) ?: "",
		db_rows_get(&rows, 0, 3) ?: "");
	*ret = m->env;
	return pool_get(m, host_id, key, url, fp, &ret->agent, err);
}

void
hosts_env_release(struct backend_env *env)
{
	if (!env)
		return;
	agent_client_free(env->agent);
	env->agent = NULL;
}

void
hostpool_drop(const char *host_id)
{
	pthread_mutex_lock(&pool_lock);
	for (size_t i = 0; i < POOL_MAX; i++)
		if (pool[i].id[0] && (!host_id || !strcmp(pool[i].id, host_id))) {
			agent_client_free(pool[i].client);
			memset(&pool[i], 0, sizeof pool[i]);
		}
	pthread_mutex_unlock(&pool_lock);
}

static int
env_by_query(struct manager *m, const char *sql, const char *arg, struct backend_env *ret,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { arg };
	const char *hid = NULL;

	if (db_query(m->db, sql, 1, p, &rows) >= 0 && rows.nrows > 0)
		hid = db_rows_get(&rows, 0, 0);
	return hosts_env(m, hid && *hid ? hid : HOST_LOCAL_ID, ret, err);
}

int
hosts_env_for_volume(struct manager *m, const char *volume_id, struct backend_env *ret,
	struct nq_error *err)
{
	return env_by_query(m,
		"SELECT COALESCE(v.host_id, (SELECT bh.host_id FROM backend_hosts bh"
		" WHERE bh.backend_id = vo.backend_id ORDER BY CASE WHEN bh.host_id ="
		" 'local' THEN 0 ELSE 1 END, bh.host_id LIMIT 1)) FROM volumes vo"
		" LEFT JOIN vms v ON v.id = vo.vm_id WHERE vo.id = $1",
		volume_id, ret, err);
}

int
hosts_env_for_backend(struct manager *m, const char *backend_id, struct backend_env *ret,
	struct nq_error *err)
{
	return env_by_query(m,
		"SELECT host_id FROM backend_hosts WHERE backend_id = $1 ORDER BY CASE WHEN"
		" host_id = 'local' THEN 0 ELSE 1 END, host_id LIMIT 1",
		backend_id, ret, err);
}
