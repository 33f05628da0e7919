/* Draining and removal of hosts (hosts.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/events.h"
#include "manager/services/backend_hosts.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/secrets.h"

int
hosts_set_draining(struct manager *m, const char *id, bool draining, struct nq_error *err)
{
	const char *p[] = { id, draining ? "1" : "0" };
	unsigned long changes = 0;

	if (db_exec(m->db, "UPDATE hosts SET draining = $2 WHERE id = $1", 2, p,
		    &changes) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (changes == 0)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"no host with id %.64s", id);
	log_info("host %s id=%s", draining ? "draining" : "undrained", id);
	events_record(m, "api", draining ? "host.drained" : "host.undrained", "host", id,
		id, "ok", NULL);
	return 0;
}

/* 409 host_in_use naming what still lives on host id. */
static int
in_use(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };
	char list[400] = "";
	size_t pos = 0;

	if (db_query(m->db,
		    "SELECT 'VM ' || name || ' (' || id || ')' FROM vms WHERE host_id = $1"
		    " UNION ALL SELECT 'backend ' || name || ' (' || id || ')' FROM backends"
		    " WHERE host_id = $1",
		    1, p, &rows) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (rows.nrows == 0)
		return 0;
	for (unsigned i = 0; i < rows.nrows && pos < sizeof list; i++) {
		int n = snprintf(list + pos, sizeof list - pos, "%s%s", i ? ", " : "",
			db_rows_get(&rows, i, 0));
		if (n < 0)
			break;
		pos += (size_t)n;
	}
	return nq_error_setr(err, -EBUSY, "host_in_use", NULL,
		"%u VM(s) or backend(s) are placed on this host: %s", rows.nrows, list);
}

/* Take the backends' credentials off the host while it answers. */
static void
detach_backends(struct manager *m, const char *id)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };
	struct host_state hs;

	/* A host that does not answer would cost each backend a full call
	 * timeout; its credentials go with the host. */
	if (hosts_get_state(m, id, &hs) < 0 || !strcmp(hs.status, "unreachable"))
		return;
	if (db_query(m->db, "SELECT backend_id FROM backend_hosts WHERE host_id = $1", 1,
		    p, &rows) < 0)
		return;
	for (unsigned i = 0; i < rows.nrows; i++) {
		_cleanup_(backend_unrefp) struct backend *b = registry_get(m->reg,
			db_rows_get(&rows, i, 0));
		struct backend_env env = { 0 };
		struct nq_error e = { 0 };
		if (!b || hosts_env(m, id, &env, &e) < 0)
			continue;
		if (b->ops->destroy(&env, b->id, b->cfg, &e) < 0)
			log_warn("cannot detach backend id=%s host=%s code=%s", b->id, id,
				e.code);
		hosts_env_release(&env);
	}
}

int
hosts_delete(struct manager *m, const char *id, struct nq_error *err)
{
	const char *p[] = { id };
	char sid[96];
	int r;

	if (!strcmp(id, HOST_LOCAL_ID))
		return nq_error_setr(err, -EPERM, "host_builtin", NULL,
			"the built-in host local cannot be removed");
	struct host_state hs;
	if (hosts_get_state(m, id, &hs) == -ENOENT)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"no host with id %.64s", id);
	if ((r = in_use(m, id, err)) < 0)
		return r;
	detach_backends(m, id);
	secrets_id(sid, sizeof sid, "host", id);
	const char *ps[] = { sid };
	const struct db_stmt steps[] = {
		{ "DELETE FROM backend_hosts WHERE host_id = $1", 1, p },
		{ "DELETE FROM secrets WHERE id = $1", 1, ps },
		{ "DELETE FROM hosts WHERE id = $1", 1, p },
	};
	r = db_exec_tx(m->db, steps, 3);
	if (r == -EBUSY)
		return in_use(m, id, err) < 0
			       ? -EBUSY
			       : nq_error_setr(err, r, "host_in_use", NULL,
					 "something was placed on this host meanwhile");
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	hostpool_drop(id);
	log_info("host removed id=%s", id);
	events_record(m, "api", "host.removed", "host", id, id, "ok", NULL);
	return 0;
}
