/* See events.h: GET /v1/events, the filtered and paged listing. Every
 * filter is a bound parameter that matches everything when NULL, so one
 * statement serves every combination on SQLite and PostgreSQL alike. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager.h"
#include "manager/services/events.h"

/* The (at_ms, id) position of a cursor: an event id, or a time in ms
 * (id "": no event of that very ms is on the far side). */
static int
resolve_cursor(struct manager *m, const char *name, const char *v, char at[24],
	char id[64], struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	size_t n = strlen(v);

	if (n > 0 && n <= 18 && strspn(v, "0123456789") == n) {
		snprintf(at, 24, "%s", v);
		id[0] = '\0';
		return 0;
	}
	const char *p[] = { v };
	if (n > AUTH_UUID_LEN ||
		db_query(m->db, "SELECT at_ms, id FROM events WHERE id = $1", 1, p,
			&rows) < 0 ||
		rows.nrows != 1)
		return nq_error_setr(err, -EINVAL, "invalid_field", name,
			"%s must be an event id or a time in ms", name);
	snprintf(at, 24, "%s", db_rows_get(&rows, 0, 0));
	snprintf(id, 64, "%s", db_rows_get(&rows, 0, 1));
	return 0;
}

static json_t *
event_json(const struct db_rows *rows, unsigned i)
{
	const char *host = db_rows_get(rows, i, 6), *cause = db_rows_get(rows, i, 8);
	const char *at = db_rows_get(rows, i, 1);

	return json_pack("{s:s, s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:o}", "id",
		db_rows_get(rows, i, 0) ?: "", "at",
		(json_int_t)(at ? strtoll(at, NULL, 10) : 0), "actor",
		db_rows_get(rows, i, 2) ?: "", "action", db_rows_get(rows, i, 3) ?: "",
		"object_type", db_rows_get(rows, i, 4) ?: "", "object_id",
		db_rows_get(rows, i, 5) ?: "", "host_id",
		host && *host ? json_string(host) : json_null(), "outcome",
		db_rows_get(rows, i, 7) ?: "", "cause",
		cause && *cause ? json_string(cause) : json_null());
}

/* The filters, $1..$8, shared by the page and the count. */
#define FILTER_SQL                                                                        \
	" FROM events WHERE (CAST($1 AS TEXT) IS NULL OR object_type = $1)"               \
	" AND (CAST($2 AS TEXT) IS NULL OR object_id = $2)"                               \
	" AND (CAST($3 AS TEXT) IS NULL OR action = $3)"                                  \
	" AND (CAST($4 AS TEXT) IS NULL OR action LIKE $4 ESCAPE '!')"                    \
	" AND (CAST($5 AS TEXT) IS NULL OR outcome = $5)"                                 \
	" AND (CAST($6 AS TEXT) IS NULL OR host_id = $6)"                                 \
	" AND (CAST($7 AS BIGINT) IS NULL OR at_ms >= $7)"                                \
	" AND (CAST($8 AS BIGINT) IS NULL OR at_ms <= $8)"
#define FILTERS 8

#define PAGE_COLS                                                                         \
	"SELECT id, at_ms, actor, action, object_type, object_id, host_id, outcome, cause"
#define BEFORE_SQL                                                                        \
	" AND (CAST($9 AS BIGINT) IS NULL OR at_ms < $9 OR (at_ms = $9 AND id < $10))"
#define AFTER_SQL " AND (at_ms > $9 OR (at_ms = $9 AND id > $10))"

struct filter_args {
	char like[2 * EVENT_FIELD_MAX + 2], exact_buf[EVENT_FIELD_MAX + 1];
	char since[24], until[24];
	const char *exact;
};

/* "vm.*" → LIKE 'vm.%' (with _ and % escaped); anything else is exact. */
static void
filter_args_init(const struct events_query *q, struct filter_args *f)
{
	size_t n = q->action ? strlen(q->action) : 0, o = 0;

	f->exact = q->action;
	f->like[0] = '\0';
	if (n > 0 && q->action[n - 1] == '*') {
		f->exact = NULL;
		for (size_t i = 0; i + 1 < n && o + 3 < sizeof f->like; i++) {
			char c = q->action[i];
			if (c == '%' || c == '_' || c == '!')
				f->like[o++] = '!';
			f->like[o++] = c;
		}
		f->like[o++] = '%';
		f->like[o] = '\0';
	}
	snprintf(f->since, sizeof f->since, "%lld", q->since_ms);
	snprintf(f->until, sizeof f->until, "%lld", q->until_ms);
}

static int
count_matches(struct manager *m, const char *const p[FILTERS], long long *ret)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	int r = db_query(m->db, "SELECT COUNT(*)" FILTER_SQL, FILTERS, p, &rows);

	if (r < 0 || rows.nrows != 1)
		return r < 0 ? r : -EIO;
	*ret = strtoll(db_rows_get(&rows, 0, 0) ?: "0", NULL, 10);
	return 0;
}

static int
fill_page(const struct db_rows *rows, unsigned limit, struct events_page *ret)
{
	json_t *arr = json_array();

	if (!arr)
		return -ENOMEM;
	for (unsigned i = 0; i < rows->nrows && i < limit; i++)
		json_array_append_new(arr, event_json(rows, i));
	ret->next[0] = '\0';
	if (rows->nrows > limit)
		snprintf(ret->next, sizeof ret->next, "%s",
			db_rows_get(rows, limit - 1, 0) ?: "");
	ret->items = arr;
	return 0;
}

int
events_list(struct manager *m, const struct events_query *q, struct events_page *ret,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	char at[24] = "", cid[64] = "", lim[16];
	unsigned limit = q->limit ? q->limit : EVENTS_LIMIT_DEFAULT;
	struct filter_args f;
	bool after = q->after != NULL;
	int r;

	if (q->before && resolve_cursor(m, "before", q->before, at, cid, err) < 0)
		return -EINVAL;
	if (after && resolve_cursor(m, "after", q->after, at, cid, err) < 0)
		return -EINVAL;
	filter_args_init(q, &f);
	snprintf(lim, sizeof lim, "%u", limit + 1); /* one more: is there a next page? */
	const char *p[] = { q->object_type, q->object_id, f.exact,
		f.like[0] ? f.like : NULL, q->outcome, q->host_id,
		q->since_ms > 0 ? f.since : NULL, q->until_ms > 0 ? f.until : NULL,
		at[0] ? at : NULL, cid[0] ? cid : NULL, lim };
	r = count_matches(m, p, &ret->total);
	if (r >= 0)
		r = db_query(m->db,
			after ? PAGE_COLS FILTER_SQL AFTER_SQL
				" ORDER BY at_ms ASC, id ASC LIMIT $11"
			      : PAGE_COLS FILTER_SQL BEFORE_SQL
				" ORDER BY at_ms DESC, id DESC LIMIT $11",
			11, p, &rows);
	if (r < 0 || fill_page(&rows, limit, ret) < 0)
		return nq_error_setr(err, r < 0 ? r : -ENOMEM, "internal_error", NULL,
			"database error");
	return 0;
}

json_t *
events_list_json(struct manager *m, const struct events_query *q, struct nq_error *err)
{
	struct events_page page = { 0 };

	if (events_list(m, q, &page, err) < 0)
		return NULL;
	return page.items;
}
