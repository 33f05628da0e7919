/* GET /v1/vms and GET /v1/vms/{id}: from the database only. One query
 * joins each VM with its rootfs volume and its host; a second counts the
 * matches for X-Total-Count. No agent is asked here: the reconciler
 * (reconciler.c) keeps states and last_exit current, so a dead host
 * cannot slow a list down. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager.h"
#include "manager/services/vms.h"

/* The VM's volume: a volume in state "error" is a failed attempt waiting
 * for its cleanup (the retry reuses its id), so the VM has none. */
#define LIST_FROM                                                                         \
	" FROM vms v LEFT JOIN volumes vol ON vol.vm_id = v.id AND vol.state <> 'error'"  \
	" LEFT JOIN hosts h ON h.id = v.host_id"
#define LIST_COLS                                                                         \
	"v.id, v.name, v.vcpus, v.memory_mib, v.image_id, v.backend_id, v.state,"         \
	" v.host_id, v.kernel, v.initrd, v.error, v.created_at, v.updated_at, v.ha,"      \
	" v.last_exit, h.name, h.unreachable_since, h.draining, vol.id, vol.path,"        \
	" vol.state"
/* $1 host_id, $2 state, $3 id: NULL matches every row. */
#define LIST_WHERE                                                                        \
	" WHERE ($1 IS NULL OR v.host_id = $1) AND ($2 IS NULL OR v.state = $2)"          \
	" AND ($3 IS NULL OR v.id = $3)"

enum col {
	C_ID,
	C_NAME,
	C_VCPUS,
	C_MEM,
	C_IMAGE,
	C_BACKEND,
	C_STATE,
	C_HOST,
	C_KERNEL,
	C_INITRD,
	C_ERROR,
	C_CREATED,
	C_UPDATED,
	C_HA,
	C_EXIT,
	C_HNAME,
	C_HUNREACH,
	C_HDRAIN,
	C_VOLID,
	C_VOLPATH,
	C_VOLSTATE,
	C_N
};

static const char *
cell(const struct db_rows *r, unsigned i, unsigned c)
{
	return db_rows_get(r, i, c);
}

static json_int_t
num(const struct db_rows *r, unsigned i, unsigned c)
{
	const char *v = cell(r, i, c);

	return v ? (json_int_t)strtoll(v, NULL, 10) : 0;
}

static json_t *
str_or_null(const char *s)
{
	return s && *s ? json_string(s) : json_null();
}

/* last_exit as the reconciler stored it (JSON text), or null. */
static json_t *
last_exit(const char *text)
{
	json_t *e = text && *text ? json_loads(text, 0, NULL) : NULL;

	return json_is_object(e) ? e : (json_decref(e), json_null());
}

static const char *
host_status(const struct db_rows *r, unsigned i)
{
	if (!cell(r, i, C_HNAME))
		return NULL;
	if (num(r, i, C_HUNREACH) > 0)
		return "unreachable";
	return num(r, i, C_HDRAIN) ? "draining" : "ok";
}

static json_t *
row_json(const struct db_rows *r, unsigned i)
{
	const char *volid = cell(r, i, C_VOLID), *hs = host_status(r, i);
	json_t *vol = volid ? json_pack("{s:s, s:s, s:s}", "id", volid, "path",
				      cell(r, i, C_VOLPATH) ?: "", "state",
				      cell(r, i, C_VOLSTATE) ?: "")
			    : json_null();

	return json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:o, s:o, s:o, s:b, s:s, s:s,"
			 " s:o, s:o, s:I, s:I, s:o}",
		"id", cell(r, i, C_ID), "name", cell(r, i, C_NAME) ?: "", "vcpus",
		num(r, i, C_VCPUS), "memory_mib", num(r, i, C_MEM), "image_id",
		cell(r, i, C_IMAGE) ?: "", "storage_backend_id",
		cell(r, i, C_BACKEND) ?: "", "state", cell(r, i, C_STATE) ?: "", "host_id",
		str_or_null(cell(r, i, C_HOST)), "host_name",
		str_or_null(cell(r, i, C_HNAME)), "host_status", str_or_null(hs), "ha",
		num(r, i, C_HA) != 0, "kernel", cell(r, i, C_KERNEL) ?: "", "initrd",
		cell(r, i, C_INITRD) ?: "", "error", str_or_null(cell(r, i, C_ERROR)),
		"volume", vol, "created_at", num(r, i, C_CREATED), "updated_at",
		num(r, i, C_UPDATED), "last_exit", last_exit(cell(r, i, C_EXIT)));
}

/* Rows into a JSON array; a VM listed twice (two live volumes) once. */
static json_t *
rows_json(const struct db_rows *rows)
{
	json_t *arr = json_array();

	if (rows->ncols != C_N) {
		json_decref(arr);
		return NULL;
	}
	for (unsigned i = 0; arr && i < rows->nrows; i++) {
		const char *id = cell(rows, i, C_ID);
		if (!id || (i > 0 && !strcmp(id, cell(rows, i - 1, C_ID) ?: "")))
			continue;
		json_array_append_new(arr, row_json(rows, i));
	}
	return arr;
}

json_t *
vms_list_page(struct manager *m, const struct vm_list_query *q, long long *ret_total)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 }, count = { 0 };
	char lim[16], off[24];

	snprintf(lim, sizeof lim, "%u", q->limit);
	snprintf(off, sizeof off, "%llu", q->offset);
	const char *p[] = { q->host_id, q->state, NULL, lim, off };
	if (db_query(m->db, "SELECT COUNT(*) FROM vms v" LIST_WHERE, 3, p, &count) < 0 ||
		db_query(m->db,
			"SELECT " LIST_COLS LIST_FROM LIST_WHERE
			" ORDER BY v.created_at, v.name, v.id LIMIT $4 OFFSET $5",
			5, p, &rows) < 0)
		return NULL;
	if (ret_total)
		*ret_total = num(&count, 0, 0);
	return rows_json(&rows);
}

json_t *
vms_get_json(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { NULL, NULL, id };
	json_t *arr, *vm;

	if (db_query(m->db, "SELECT " LIST_COLS LIST_FROM LIST_WHERE, 3, p, &rows) < 0 ||
		!(arr = rows_json(&rows))) {
		nq_error_set(err, "internal_error", NULL, "database error");
		return NULL;
	}
	vm = json_array_get(arr, 0);
	if (!vm) {
		json_decref(arr);
		nq_error_setr(err, -ENOENT, "not_found", NULL, "no VM with id %.64s", id);
		return NULL;
	}
	json_incref(vm);
	json_decref(arr);
	return vm;
}
