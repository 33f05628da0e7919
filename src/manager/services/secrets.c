/* See secrets.h. */
#include "manager/services/secrets.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "manager/auth/sealed.h"
#include "manager/manager.h"

void
secrets_id(char *buf, size_t sz, const char *kind, const char *id)
{
	snprintf(buf, sz, "%s:%s", kind, id);
}

int
secrets_put(struct manager *m, const char *id, const struct secret *s, int *ret_gen)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	_cleanup_free_ char *b64 = NULL;
	char now[24];
	int r;

	r = sealed_seal(&m->sealed, id, s->buf, s->len, &b64);
	if (r < 0)
		return r;
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	const char *p[] = { id, b64, now };
	r = db_query(m->db,
		"INSERT INTO secrets (id, sealed, generation, updated_at) VALUES ($1, $2, 1, $3)"
		" ON CONFLICT (id) DO UPDATE SET sealed = $2, updated_at = $3,"
		" generation = secrets.generation + 1 RETURNING generation",
		3, p, &rows);
	if (r < 0)
		return r;
	if (ret_gen)
		*ret_gen = rows.nrows
				   ? (int)strtol(db_rows_get(&rows, 0, 0) ?: "0", NULL, 10)
				   : 0;
	return 0;
}

int
secrets_get(struct manager *m, const char *id, struct secret **ret, int *ret_gen)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { id };
	int r;

	r = db_query(m->db, "SELECT sealed, generation FROM secrets WHERE id = $1", 1, p,
		&rows);
	if (r < 0)
		return r;
	if (rows.nrows == 0)
		return -ENOENT;
	r = sealed_open(&m->sealed, id, db_rows_get(&rows, 0, 0) ?: "", ret);
	if (r >= 0 && ret_gen)
		*ret_gen = (int)strtol(db_rows_get(&rows, 0, 1) ?: "0", NULL, 10);
	return r;
}

int
secrets_delete(struct manager *m, const char *id)
{
	const char *p[] = { id };

	return db_exec(m->db, "DELETE FROM secrets WHERE id = $1", 1, p, NULL);
}
