/* PostgreSQL engine for db.h (libpq). Parameters are sent with
 * PQexecParams as untyped text, so the server infers each type from the
 * statement, exactly as SQLite applies column affinity. */
#include <errno.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "manager/db/db.h"
#include "common/log.h"

static int
map_result(PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (state && strcmp(state, "23505") == 0)
		return -EEXIST;
	if (state && strcmp(state, "23503") == 0)
		return -EBUSY;
	log_debug("postgres error sqlstate=%s msg=\"%s\"", state ? state : "-",
		PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) ?: "");
	return -EIO;
}

static void
quiet_notice(void *arg, const char *msg)
{
	(void)arg, (void)msg; /* "relation already exists, skipping" etc. */
}

static int
pg_open(const char *url, void **ret_h)
{
	PGconn *c = PQconnectdb(url);

	if (!c)
		return -ENOMEM;
	if (PQstatus(c) != CONNECTION_OK) {
		/* The message may quote the URL, which may carry a password:
		 * log only that it failed. */
		log_error("cannot connect to postgres");
		PQfinish(c);
		return -ECONNREFUSED;
	}
	PQsetNoticeProcessor(c, quiet_notice, NULL);
	*ret_h = c;
	return 0;
}

static void
pg_close(void *h)
{
	PQfinish(h);
}

/* Reconnect once when the server dropped the connection. */
static void
pg_check_conn(PGconn *c)
{
	if (PQstatus(c) != CONNECTION_OK) {
		log_warn("postgres connection lost, resetting");
		PQreset(c);
	}
}

static int
pg_exec_script(void *h, const char *sql)
{
	PGresult *res;
	int r = 0;

	pg_check_conn(h);
	res = PQexec(h, sql);
	if (!res)
		return -ENOMEM;
	if (PQresultStatus(res) != PGRES_COMMAND_OK &&
		PQresultStatus(res) != PGRES_TUPLES_OK)
		r = map_result(res);
	PQclear(res);
	return r;
}

static int
pg_query(void *h, const char *sql, unsigned nparams, const char *const *params,
	struct db_rows *ret_rows, unsigned long *ret_changes)
{
	struct db_rows rows = { 0 };
	PGresult *res;
	int r = 0;

	pg_check_conn(h);
	res = PQexecParams(h, sql, (int)nparams, NULL, params, NULL, NULL, 0);
	if (!res)
		return -ENOMEM;
	ExecStatusType s = PQresultStatus(res);
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
		r = map_result(res);
		goto out;
	}
	if (ret_changes) {
		const char *t = PQcmdTuples(res);
		*ret_changes = t && *t ? strtoul(t, NULL, 10) : 0;
	}
	if (!ret_rows)
		goto out;
	rows.nrows = (unsigned)PQntuples(res);
	rows.ncols = (unsigned)PQnfields(res);
	if (rows.nrows && rows.ncols) {
		rows.cells = calloc((size_t)rows.nrows * rows.ncols, sizeof *rows.cells);
		if (!rows.cells) {
			r = -ENOMEM;
			goto out;
		}
	}
	for (unsigned i = 0; i < rows.nrows; i++)
		for (unsigned c = 0; c < rows.ncols; c++) {
			if (PQgetisnull(res, (int)i, (int)c))
				continue;
			char *v = strdup(PQgetvalue(res, (int)i, (int)c));
			if (!v) {
				db_rows_release(&rows);
				r = -ENOMEM;
				goto out;
			}
			rows.cells[(size_t)i * rows.ncols + c] = v;
		}
	*ret_rows = rows;
out:
	PQclear(res);
	return r;
}

/* Equal snapshots (xmin, xmax and the xids in progress) see the same
 * committed data: any commit since changes one of them. */
static int
pg_data_version(void *h, char *buf, size_t sz)
{
	PGresult *res;
	int r = -EIO;

	pg_check_conn(h);
	res = PQexec(h, "SELECT pg_current_snapshot()::text");
	if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
		(size_t)snprintf(buf, sz, "%s", PQgetvalue(res, 0, 0)) < sz)
		r = 0;
	PQclear(res);
	return r;
}

const struct db_ops db_pg_ops = {
	.engine = "postgres",
	.open = pg_open,
	.close = pg_close,
	.exec_script = pg_exec_script,
	.query = pg_query,
	.data_version = pg_data_version,
};
