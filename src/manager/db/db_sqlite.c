/* SQLite engine for db.h: one connection, WAL, foreign keys on. */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/db/db.h"
#include "common/log.h"

static int
map_err(sqlite3 *h, int rc)
{
	int ext = sqlite3_extended_errcode(h);

	if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		return -EEXIST;
	if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
		return -EBUSY;
	log_debug("sqlite error rc=%d msg=\"%s\"", rc, sqlite3_errmsg(h));
	return -EIO;
}

static int
sq_open(const char *url, void **ret_h)
{
	const char *path = url + strlen("sqlite:");
	sqlite3 *h = NULL;
	int rc;

	if (!*path)
		return -EINVAL;
	rc = sqlite3_open_v2(path, &h,
		SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		log_error("cannot open sqlite database path=\"%s\" msg=\"%s\"", path,
			h ? sqlite3_errmsg(h) : "out of memory");
		sqlite3_close(h);
		return -EIO;
	}
	sqlite3_busy_timeout(h, 5000);
	sqlite3_extended_result_codes(h, 1);
	rc = sqlite3_exec(h,
		"PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;"
		" PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON;",
		NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		int r = map_err(h, rc);
		sqlite3_close(h);
		return r;
	}
	*ret_h = h;
	return 0;
}

static void
sq_close(void *h)
{
	sqlite3_close(h);
}

static int
sq_exec_script(void *h, const char *sql)
{
	int rc = sqlite3_exec(h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : map_err(h, rc);
}

static int
collect_row(sqlite3_stmt *st, struct db_rows *rows, size_t *cap)
{
	unsigned nc = rows->ncols;
	size_t need = ((size_t)rows->nrows + 1) * nc;

	if (need > *cap) {
		size_t ncap = *cap ? *cap * 2 : 16 * (nc ? nc : 1);
		while (ncap < need)
			ncap *= 2;
		char **nv = realloc(rows->cells, ncap * sizeof *nv);
		if (!nv)
			return -ENOMEM;
		rows->cells = nv;
		*cap = ncap;
	}
	for (unsigned c = 0; c < nc; c++) {
		const unsigned char *t = sqlite3_column_text(st, (int)c);
		char **cell = &rows->cells[(size_t)rows->nrows * nc + c];

		*cell = NULL;
		if (sqlite3_column_type(st, (int)c) == SQLITE_NULL)
			continue;
		*cell = strdup(t ? (const char *)t : "");
		if (!*cell) {
			for (unsigned k = 0; k < c; k++)
				free(rows->cells[(size_t)rows->nrows * nc + k]);
			return -ENOMEM;
		}
	}
	rows->nrows++;
	return 0;
}

static int
sq_query(void *h, const char *sql, unsigned nparams, const char *const *params,
	struct db_rows *ret_rows, unsigned long *ret_changes)
{
	struct db_rows rows = { 0 };
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int rc, r = 0;

	rc = sqlite3_prepare_v2(h, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return map_err(h, rc);
	/* Bind by name so "$2" may appear before "$1" or twice. */
	for (unsigned i = 0; i < nparams; i++) {
		char name[16];
		int idx;

		snprintf(name, sizeof name, "$%u", i + 1);
		idx = sqlite3_bind_parameter_index(st, name);
		if (idx == 0)
			continue;
		rc = params[i] ? sqlite3_bind_text(st, idx, params[i], -1, SQLITE_TRANSIENT)
			       : sqlite3_bind_null(st, idx);
		if (rc != SQLITE_OK) {
			r = map_err(h, rc);
			goto out;
		}
	}
	rows.ncols = (unsigned)sqlite3_column_count(st);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (!ret_rows)
			continue;
		r = collect_row(st, &rows, &cap);
		if (r < 0)
			goto out;
	}
	if (rc != SQLITE_DONE) {
		r = map_err(h, rc);
		goto out;
	}
	if (ret_changes)
		*ret_changes = (unsigned long)sqlite3_changes(h);
	if (ret_rows) {
		*ret_rows = rows;
		rows.cells = NULL;
		rows.nrows = 0;
	}
out:
	db_rows_release(&rows);
	sqlite3_finalize(st);
	return r;
}

static int
sq_data_version(void *h, char *buf, size_t sz)
{
	sqlite3_stmt *st = NULL;
	long long v = -1;
	int rc = sqlite3_prepare_v2(h, "PRAGMA data_version", -1, &st, NULL);

	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (v < 0)
		return -EIO;
	/* data_version moves for other connections' commits only: add ours. */
	snprintf(buf, sz, "%lld:%lld", v, (long long)sqlite3_total_changes64(h));
	return 0;
}

const struct db_ops db_sqlite_ops = {
	.engine = "sqlite",
	.open = sq_open,
	.close = sq_close,
	.exec_script = sq_exec_script,
	.query = sq_query,
	.data_version = sq_data_version,
};
