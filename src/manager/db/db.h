/* The manager's SQL database behind one ops table: SQLite (embedded, WAL)
 * or PostgreSQL (libpq). Every statement uses bound parameters written
 * "$1", "$2", … in the SQL text; values travel as text (NULL for SQL NULL)
 * and both engines convert them to the column type. Results come back as
 * text too.
 *
 * One connection per process, guarded by a recursive mutex, so a
 * transaction (db_begin … db_commit/db_rollback) holds the connection for
 * the calling thread. Functions return 0/-errno: -EEXIST for a unique
 * constraint violation, -EBUSY for a foreign-key violation, -EIO for other
 * engine errors (detail logged at debug, never the parameters). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define DB_MAX_PARAMS 16

/* A result set: nrows × ncols cells, row-major; cells may be NULL. Owned
 * by the caller: release with db_rows_release. */
struct db_rows {
	unsigned nrows, ncols;
	char **cells;
};

void db_rows_release(struct db_rows *r);
/* Cell (row, col) or NULL when out of range or SQL NULL. */
const char *db_rows_get(const struct db_rows *r, unsigned row, unsigned col);

/* One engine. h is the engine's own handle. */
struct db_ops {
	const char *engine; /* "sqlite" or "postgres" */
	int (*open)(const char *url, void **ret_h);
	void (*close)(void *h);
	/* Several statements, no parameters (migrations). */
	int (*exec_script)(void *h, const char *sql);
	/* One statement with parameters; ret_rows may be NULL (rows are then
	 * discarded); ret_changes (may be NULL) gets the affected row count. */
	int (*query)(void *h, const char *sql, unsigned nparams, const char *const *params,
		struct db_rows *ret_rows, unsigned long *ret_changes);
	/* See db_data_version. */
	int (*data_version)(void *h, char *buf, size_t sz);
};

extern const struct db_ops db_sqlite_ops;
extern const struct db_ops db_pg_ops;

struct db;

/* url: "sqlite:PATH" or "postgres://…" / "postgresql://…". */
int db_open(const char *url, struct db **ret);
void db_close(struct db *db);
const char *db_engine(const struct db *db);

/* A numbered migration compiled into the binary (migrations.c). */
struct db_migration {
	int version;
	const char *name;
	const char *sql;
};
extern const struct db_migration db_migrations[];
extern const size_t db_migrations_count;

/* Apply, in order and each in its own transaction, every migration whose
 * version is above the highest recorded in schema_migrations. Refuses
 * (-EPROTO) a database that records a version this binary does not know.
 * *ret_applied (may be NULL) gets the number applied. */
int db_migrate(struct db *db, const struct db_migration *m, size_t n,
	unsigned *ret_applied);

int db_exec(struct db *db, const char *sql, unsigned nparams, const char *const *params,
	unsigned long *ret_changes);
int db_query(struct db *db, const char *sql, unsigned nparams, const char *const *params,
	struct db_rows *ret);

/* Run-once work (db_lock in db.c). 1 when this process holds the lock
 * named key (taking it now if it is free), 0 when another holds it,
 * -errno on error. PostgreSQL: a session advisory lock on this process's
 * connection, checked in pg_locks first, so calling it every round
 * re-takes a lock lost with a re-established connection without stacking
 * it. SQLite: one manager per file, an flock on "<db file>.lock" held by
 * the process (key is not used). */
int db_try_advisory_lock(struct db *db, long long key);
void db_advisory_unlock(struct db *db, long long key);

/* A token of the data this connection sees: it changes whenever any
 * connection (this one or another process's) may have committed a change;
 * equal tokens mean the same data. Cheap (no table is read), so a cache
 * of query results can be checked on every use. SQLite: PRAGMA
 * data_version and this connection's total_changes; PostgreSQL: the
 * current snapshot (xmin:xmax:in-progress xids). */
int db_data_version(struct db *db, char *buf, size_t sz);

/* Transactions: begin takes the connection lock for this thread until
 * commit or rollback. rollback is safe to call after a failed commit. */
int db_begin(struct db *db);
int db_commit(struct db *db);
void db_rollback(struct db *db);

/* One statement of a list: sql NULL skips it (a step that applies only
 * sometimes); params has nparams entries. */
struct db_stmt {
	const char *sql;
	unsigned nparams;
	const char *const *params;
};

/* Run the statements in order, stopping at the first failure, which it
 * returns. */
int db_exec_all(struct db *db, const struct db_stmt *s, size_t n);
/* The same all or nothing: in one transaction, rolled back on failure. */
int db_exec_tx(struct db *db, const struct db_stmt *s, size_t n);
