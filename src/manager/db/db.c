/* Engine-independent part of the database layer: dispatch, locking,
 * transactions and migrations. See db.h. */
#include "manager/db/db.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/macro.h"

struct db {
	const struct db_ops *ops;
	void *h;
	pthread_mutex_t lock; /* recursive: a transaction nests statements */
	char *lock_path;      /* sqlite: "<db file>.lock" (never a PG URL) */
	int lock_fd;          /* sqlite: flock held while >= 0 */
};

void
db_rows_release(struct db_rows *r)
{
	if (!r || !r->cells)
		return;
	for (size_t i = 0; i < (size_t)r->nrows * r->ncols; i++)
		free(r->cells[i]);
	free(r->cells);
	r->cells = NULL;
	r->nrows = r->ncols = 0;
}

const char *
db_rows_get(const struct db_rows *r, unsigned row, unsigned col)
{
	if (!r || row >= r->nrows || col >= r->ncols)
		return NULL;
	return r->cells[(size_t)row * r->ncols + col];
}

int
db_open(const char *url, struct db **ret)
{
	const struct db_ops *ops;
	pthread_mutexattr_t attr;
	struct db *db;
	int r;

	if (strncmp(url, "sqlite:", 7) == 0)
		ops = &db_sqlite_ops;
	else if (strncmp(url, "postgres://", 11) == 0 ||
		 strncmp(url, "postgresql://", 13) == 0)
		ops = &db_pg_ops;
	else
		return -EPROTONOSUPPORT;
	db = calloc(1, sizeof *db);
	if (!db)
		return -ENOMEM;
	db->ops = ops;
	db->lock_fd = -1;
	if (ops == &db_sqlite_ops &&
		asprintf(&db->lock_path, "%s.lock", url + strlen("sqlite:")) < 0) {
		free(db);
		return -ENOMEM;
	}
	r = ops->open(url, &db->h);
	if (r < 0) {
		free(db->lock_path);
		free(db);
		return r;
	}
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&db->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	*ret = db;
	return 0;
}

void
db_close(struct db *db)
{
	if (!db)
		return;
	db->ops->close(db->h);
	pthread_mutex_destroy(&db->lock);
	if (db->lock_fd >= 0)
		close(db->lock_fd);
	free(db->lock_path);
	free(db);
}

const char *
db_engine(const struct db *db)
{
	return db->ops->engine;
}

int
db_exec(struct db *db, const char *sql, unsigned nparams, const char *const *params,
	unsigned long *ret_changes)
{
	int r;

	if (nparams > DB_MAX_PARAMS)
		return -E2BIG;
	pthread_mutex_lock(&db->lock);
	r = db->ops->query(db->h, sql, nparams, params, NULL, ret_changes);
	pthread_mutex_unlock(&db->lock);
	return r;
}

int
db_query(struct db *db, const char *sql, unsigned nparams, const char *const *params,
	struct db_rows *ret)
{
	int r;

	if (nparams > DB_MAX_PARAMS)
		return -E2BIG;
	pthread_mutex_lock(&db->lock);
	r = db->ops->query(db->h, sql, nparams, params, ret, NULL);
	pthread_mutex_unlock(&db->lock);
	return r;
}

int
db_begin(struct db *db)
{
	int r;

	pthread_mutex_lock(&db->lock);
	r = db->ops->query(db->h, "BEGIN", 0, NULL, NULL, NULL);
	if (r < 0)
		pthread_mutex_unlock(&db->lock);
	return r;
}

int
db_commit(struct db *db)
{
	int r = db->ops->query(db->h, "COMMIT", 0, NULL, NULL, NULL);

	if (r < 0) {
		/* Leave the lock held: the caller's db_rollback releases it. */
		return r;
	}
	pthread_mutex_unlock(&db->lock);
	return 0;
}

/* Only valid while a transaction is open (after db_begin, or after a
 * failed db_commit). */
void
db_rollback(struct db *db)
{
	(void)db->ops->query(db->h, "ROLLBACK", 0, NULL, NULL, NULL);
	pthread_mutex_unlock(&db->lock);
}

int
db_exec_all(struct db *db, const struct db_stmt *s, size_t n)
{
	int r;

	for (size_t i = 0; i < n; i++)
		if (s[i].sql &&
			(r = db_exec(db, s[i].sql, s[i].nparams, s[i].params, NULL)) < 0)
			return r;
	return 0;
}

int
db_exec_tx(struct db *db, const struct db_stmt *s, size_t n)
{
	int r = db_begin(db);

	if (r < 0)
		return r;
	r = db_exec_all(db, s, n);
	if (r >= 0)
		r = db_commit(db);
	if (r < 0)
		db_rollback(db);
	return r;
}

static int
current_version(struct db *db, int *ret)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	int r;

	r = db_query(db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", 0,
		NULL, &rows);
	if (r < 0)
		return r;
	const char *v = db_rows_get(&rows, 0, 0);
	*ret = v ? (int)strtol(v, NULL, 10) : 0;
	return 0;
}

int
db_migrate(struct db *db, const struct db_migration *m, size_t n, unsigned *ret_applied)
{
	unsigned applied = 0;
	int cur, r;

	r = db_exec(db,
		"CREATE TABLE IF NOT EXISTS schema_migrations ("
		" version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
		" applied_at BIGINT NOT NULL)",
		0, NULL, NULL);
	if (r < 0)
		return r;
	r = current_version(db, &cur);
	if (r < 0)
		return r;
	if (n > 0 && cur > m[n - 1].version)
		return -EPROTO; /* written by a newer binary: never go back */
	for (size_t i = 0; i < n; i++) {
		char ver[16], now[24];

		if (m[i].version <= cur)
			continue;
		snprintf(ver, sizeof ver, "%d", m[i].version);
		snprintf(now, sizeof now, "%lld", (long long)time(NULL));
		const char *p[] = { ver, m[i].name, now };

		r = db_begin(db);
		if (r < 0)
			return r;
		r = db->ops->exec_script(db->h, m[i].sql);
		if (r >= 0)
			r = db_exec(db,
				"INSERT INTO schema_migrations (version, name,"
				" applied_at) VALUES ($1, $2, $3)",
				3, p, NULL);
		if (r >= 0)
			r = db_commit(db);
		if (r < 0) {
			db_rollback(db);
			log_error("migration failed version=%d name=%s", m[i].version,
				m[i].name);
			return r;
		}
		log_info("migration applied version=%d name=%s", m[i].version, m[i].name);
		applied++;
	}
	if (ret_applied)
		*ret_applied = applied;
	return 0;
}

static int
pg_lock_held(struct db *db, const char *key)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { key };
	int r = db_query(db,
		"SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory'"
		" AND pid = pg_backend_pid() AND granted AND classid = 0"
		" AND objid = $1 AND objsubid = 1",
		1, p, &rows);
	const char *v = db_rows_get(&rows, 0, 0);

	return r < 0 ? r : (v && strcmp(v, "0") != 0);
}

int
db_try_advisory_lock(struct db *db, long long key)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	char k[24];
	int r;

	if (key < 0 || key > 0x7fffffffLL)
		return -EINVAL; /* classid 0: the key is objid alone */
	if (db->ops != &db_pg_ops) {
		int fd;

		if (db->lock_fd >= 0)
			return 1;
		fd = open(db->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return -errno;
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			r = errno == EWOULDBLOCK ? 0 : -errno;
			close(fd);
			return r;
		}
		db->lock_fd = fd;
		return 1;
	}
	snprintf(k, sizeof k, "%lld", key);
	r = pg_lock_held(db, k);
	if (r != 0)
		return r;
	const char *p[] = { k };
	r = db_query(db, "SELECT pg_try_advisory_lock($1)", 1, p, &rows);
	if (r < 0)
		return r;
	const char *v = db_rows_get(&rows, 0, 0);
	return v && (v[0] == 't' || v[0] == '1');
}

void
db_advisory_unlock(struct db *db, long long key)
{
	char k[24];

	if (db->ops != &db_pg_ops) {
		if (db->lock_fd >= 0)
			close(db->lock_fd); /* releases the flock */
		db->lock_fd = -1;
		return;
	}
	snprintf(k, sizeof k, "%lld", key);
	const char *p[] = { k };
	(void)db_query(db, "SELECT pg_advisory_unlock($1)", 1, p, NULL);
}

int
db_data_version(struct db *db, char *buf, size_t sz)
{
	int r;

	pthread_mutex_lock(&db->lock);
	r = db->ops->data_version(db->h, buf, sz);
	pthread_mutex_unlock(&db->lock);
	return r;
}
