/* See backend_hosts.h; hosts_attach_backend (hosts.h) lives here too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/services/events.h"
#include "manager/services/backend_hosts.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/claims.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/hosts_internal.h"
#include "manager/services/secrets.h"
#include "manager/services/storage.h"

#define REACH_TIMEOUT_MS 3000

static void
now_str(char buf[24])
{
	snprintf(buf, 24, "%lld", (long long)time(NULL));
}

int
backend_hosts_list(struct manager *m, const char *backend_id,
	char ret_ids[BACKEND_HOSTS_MAX][64], size_t *ret_n)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { backend_id };
	int r;

	r = db_query(m->db,
		"SELECT host_id FROM backend_hosts WHERE backend_id = $1 ORDER BY"
		" CASE WHEN host_id = 'local' THEN 0 ELSE 1 END, host_id",
		1, p, &rows);
	if (r < 0)
		return r;
	*ret_n = 0;
	for (unsigned i = 0; i < rows.nrows && i < BACKEND_HOSTS_MAX; i++)
		snprintf(ret_ids[(*ret_n)++], 64, "%s", db_rows_get(&rows, i, 0));
	return 0;
}

/* The attachment row of (backend, host) with its status and generation. */
static int
record(struct manager *m, const char *bid, const char *hid, const char *status,
	const char *code, const char *msg, int gen)
{
	char now[24], g[16];
	const char *p[] = { bid, hid, status, code, msg, g, now };

	now_str(now);
	snprintf(g, sizeof g, "%d", gen);
	return db_exec(m->db,
		"INSERT INTO backend_hosts (backend_id, host_id, status, error_code,"
		" error_message, secret_generation, updated_at) VALUES ($1, $2, $3, $4, $5,"
		" $6, $7) ON CONFLICT (backend_id, host_id) DO UPDATE SET status = $3,"
		" error_code = $4, error_message = $5, secret_generation = $6,"
		" updated_at = $7",
		7, p, NULL);
}

int
backend_hosts_created(struct manager *m, const char *backend_id, const char *host_id,
	const struct secret *secret)
{
	char sid[96];
	int gen = 0, r = 0;

	secrets_id(sid, sizeof sid, "backend", backend_id);
	if (secret)
		r = secrets_put(m, sid, secret, &gen);
	if (r >= 0)
		r = record(m, backend_id, host_id, "ok", "", "", gen);
	return r;
}

/* Create b on host hid with its sealed password; records the row. */
static int
attach(struct manager *m, const struct backend *b, const char *hid, struct nq_error *err)
{
	_cleanup_secret_ struct secret *pw = NULL;
	struct backend_env env = { 0 };
	char sid[96];
	int gen = 0, r;

	secrets_id(sid, sizeof sid, "backend", b->id);
	if (b->has_password && (r = secrets_get(m, sid, &pw, &gen)) < 0)
		return nq_error_setr(err, r, "smb_cred_missing", NULL,
			"the manager holds no usable password for backend %s (%s): rotate it"
			" to attach it on another host",
			b->name,
			r == -ENOENT ? "created before sealed secrets" : "cannot open");
	r = hosts_env(m, hid, &env, err);
	if (r < 0)
		return r;
	r = b->ops->create(&env, b->id, b->cfg, pw, err);
	hosts_env_release(&env);
	if (r < 0)
		return r;
	r = record(m, b->id, hid, "ok", "", "", gen);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	log_info("backend attached id=%s host=%s", b->id, hid);
	events_record(m, "api", "backend.attached", "backend", b->id, hid, "ok", NULL);
	return 0;
}

int
hosts_attach_backend(struct manager *m, const char *backend_id, const char *host_id,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	_cleanup_(backend_unrefp) struct backend *b = NULL;
	char key[CLAIM_KEY_MAX];
	const char *p[] = { backend_id, host_id };
	int r;

	b = registry_get(m->reg, backend_id);
	if (!b)
		return nq_error_setr(err, -ENOENT, "not_found", "storage_backend_id",
			"no backend with id %.64s", backend_id);
	r = db_query(m->db,
		"SELECT (SELECT host_id FROM backends WHERE id = $1),"
		" (SELECT COUNT(*) FROM backend_hosts WHERE backend_id = $1 AND host_id = $2)",
		2, p, &rows);
	if (r < 0 || rows.nrows != 1)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (strcmp(db_rows_get(&rows, 0, 1) ?: "0", "0") != 0)
		return 0;
	const char *owner = db_rows_get(&rows, 0, 0) ?: "";
	if (!strcmp(b->ops->kind, "localfile") &&
		strcmp(*owner ? owner : HOST_LOCAL_ID, host_id) != 0)
		return nq_error_setr(err, -EXDEV, "backend_not_shared",
			"storage_backend_id", "the localfile backend %s belongs to host %s",
			b->name, *owner ? owner : HOST_LOCAL_ID);
	/* One attach of this backend at a time: the backend's claim. */
	claim_key(key, "backend", backend_id);
	r = claim_try(key, "the storage backend", err);
	if (r < 0)
		return r;
	r = attach(m, b, host_id, err);
	claim_release(key);
	return r;
}
