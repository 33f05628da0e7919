/* GET /v1/vms and GET /v1/vms/{id}: from the database only. One query
 * joins each VM with its rootfs volume and its host; a second counts the
 * matches for X-Total-Count. No agent is asked here: the reconciler
 * (reconciler.c) keeps states and last_exit current, so a dead host
 * cannot slow a list down. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/nq_buf.h"
#include "manager/manager.h"
#include "manager/services/vms.h"

#define VMS_TEXT_MAX (64u << 20) /* 1000 VMs with the longest fields */

/* The VM's volume: a volume in state "error" is a failed attempt waiting
 * for its cleanup (the retry reuses its id), so the VM has none. */
#define LIST_FROM                                                                         \
	" FROM vms v LEFT JOIN volumes vol ON vol.vm_id = v.id AND vol.state <> 'error'"  \
	" LEFT JOIN hosts h ON h.id = v.host_id"                                          \
	" LEFT JOIN backend_hosts bh ON bh.backend_id = v.backend_id AND"                 \
	" bh.host_id = v.host_id"
#define LIST_COLS                                                                         \
	"v.id, v.name, v.vcpus, v.memory_mib, v.image_id, v.backend_id, v.state,"         \
	" v.host_id, v.kernel, v.initrd, v.error, v.created_at, v.updated_at, v.ha,"      \
	" v.last_exit, h.name, h.unreachable_since, h.draining, vol.id, vol.path,"        \
	" vol.state, bh.status, bh.error_code, bh.error_message"
/* $1 host_id, $2 state, $3 id: NULL matches every row. */
#define LIST_WHERE                                                                                           \
	" WHERE (CAST($1 AS TEXT) IS NULL OR v.host_id = $1) AND (CAST($2 AS TEXT) IS NULL OR v.state = $2)" \
	" AND (CAST($3 AS TEXT) IS NULL OR v.id = $3)"

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
	C_BSTATUS,
	C_BCODE,
	C_BMSG,
	C_N
};

static const char *
cell(const struct db_rows *r, unsigned i, unsigned c)
{
	return db_rows_get(r, i, c);
}

static long long
num(const struct db_rows *r, unsigned i, unsigned c)
{
	const char *v = cell(r, i, c);

	return v ? strtoll(v, NULL, 10) : 0;
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

/* s as a JSON string literal ('"', '\\' and control characters escaped,
 * as json_buf_add_string does), with runs of plain bytes copied at once. */
static int
add_json_str(struct nq_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	int r = nq_buf_add(b, "\"", 1);

	while (r >= 0 && *s) {
		size_t n = strcspn(s,
			"\"\\\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c"
			"\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19"
			"\x1a\x1b\x1c\x1d\x1e\x1f");
		if (n) {
			r = nq_buf_add(b, s, n);
			s += n;
			continue;
		}
		unsigned char c = (unsigned char)*s++;
		char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
		if (c == '"' || c == '\\')
			esc[1] = (char)c;
		r = nq_buf_add(b, esc, c == '"' || c == '\\' ? 2 : 6);
	}
	return r < 0 ? r : nq_buf_add(b, "\"", 1);
}

/* key is a literal: ,"key": */
#define ADD_KEY(b, key) nq_buf_add(b, ",\"" key "\":", sizeof(key) + 3)

/* ,"key":"value", or null when v is NULL (or "" and empty_null). */
#define ADD_STR(b, key, v, empty_null) add_str_value(b, ADD_KEY(b, key), v, empty_null)

static int
add_str_value(struct nq_buf *b, int r, const char *v, bool empty_null)
{
	if (r < 0)
		return r;
	return !v || (empty_null && !*v) ? nq_buf_add(b, "null", 4) : add_json_str(b, v);
}

/* ,"key":N with the database's own decimal text (0 when not a number). */
#define ADD_NUM(b, key, v) add_num_value(b, ADD_KEY(b, key), v)

static int
add_num_value(struct nq_buf *b, int r, const char *v)
{
	size_t n = v ? strlen(v) : 0;
	size_t d = n && v[0] == '-' ? 1 : 0;

	if (r < 0)
		return r;
	if (n == d || n > 20 || strspn(v + d, "0123456789") != n - d)
		return nq_buf_add(b, "0", 1);
	return nq_buf_add(b, v, n);
}

/* last_exit as the reconciler stored it: its own compact JSON object
 * (reconcile_apply.c sanitises what the agent said before writing it),
 * copied as is; anything else shows as null. */
static int
add_exit(struct nq_buf *b, const char *v)
{
	size_t n = v ? strlen(v) : 0;
	int r = ADD_KEY(b, "last_exit");

	if (r < 0)
		return r;
	if (n < 2 || v[0] != '{' || v[n - 1] != '}')
		return nq_buf_add(b, "null", 4);
	return nq_buf_add(b, v, n);
}

static int
add_volume(struct nq_buf *b, const struct db_rows *r, unsigned i)
{
	int rc = ADD_KEY(b, "volume");

	if (rc < 0 || !cell(r, i, C_VOLID))
		return rc < 0 ? rc : nq_buf_add(b, "null", 4);
	rc = nq_buf_add(b, "{\"id\":", 6);
	rc = rc < 0 ? rc : add_json_str(b, cell(r, i, C_VOLID));
	rc = rc < 0 ? rc : ADD_STR(b, "path", cell(r, i, C_VOLPATH) ?: "", false);
	rc = rc < 0 ? rc : ADD_STR(b, "state", cell(r, i, C_VOLSTATE) ?: "", false);
	return rc < 0 ? rc : nq_buf_add(b, "}", 1);
}

/* The status of the VM's backend on the VM's host (backend_hosts), so a
 * VM on a failing backend is flagged: backend_status and backend_error
 * {code, message} (null when ok or unknown). */
static int
add_backend_status(struct nq_buf *b, const struct db_rows *r, unsigned i)
{
	const char *code = cell(r, i, C_BCODE);
	int rc = ADD_STR(b, "backend_status", cell(r, i, C_BSTATUS), true);

	rc = rc < 0 ? rc : ADD_KEY(b, "backend_error");
	if (rc < 0 || !code || !*code)
		return rc < 0 ? rc : nq_buf_add(b, "null", 4);
	rc = nq_buf_add(b, "{\"code\":", 8);
	rc = rc < 0 ? rc : add_json_str(b, code);
	rc = rc < 0 ? rc : ADD_STR(b, "message", cell(r, i, C_BMSG) ?: "", false);
	return rc < 0 ? rc : nq_buf_add(b, "}", 1);
}

/* Row i as a JSON object. Text is built here directly: a page of 100 VMs
 * through jansson costs more than the query. */
static int
add_row(struct nq_buf *b, const struct db_rows *r, unsigned i)
{
	int rc = nq_buf_add(b, "{\"id\":", 6);

	rc = rc < 0 ? rc : add_json_str(b, cell(r, i, C_ID));
	rc = rc < 0 ? rc : ADD_STR(b, "name", cell(r, i, C_NAME) ?: "", false);
	rc = rc < 0 ? rc : ADD_NUM(b, "vcpus", cell(r, i, C_VCPUS));
	rc = rc < 0 ? rc : ADD_NUM(b, "memory_mib", cell(r, i, C_MEM));
	rc = rc < 0 ? rc : ADD_STR(b, "image_id", cell(r, i, C_IMAGE) ?: "", false);
	rc = rc < 0 ? rc
		    : ADD_STR(b, "storage_backend_id", cell(r, i, C_BACKEND) ?: "", false);
	rc = rc < 0 ? rc : ADD_STR(b, "state", cell(r, i, C_STATE) ?: "", false);
	rc = rc < 0 ? rc : ADD_STR(b, "host_id", cell(r, i, C_HOST), true);
	rc = rc < 0 ? rc : ADD_STR(b, "host_name", cell(r, i, C_HNAME), true);
	rc = rc < 0 ? rc : ADD_STR(b, "host_status", host_status(r, i), true);
	rc = rc < 0 ? rc : ADD_KEY(b, "ha");
	rc = rc < 0 ? rc
		    : (num(r, i, C_HA) ? nq_buf_add(b, "true", 4)
				       : nq_buf_add(b, "false", 5));
	rc = rc < 0 ? rc : ADD_STR(b, "kernel", cell(r, i, C_KERNEL) ?: "", false);
	rc = rc < 0 ? rc : ADD_STR(b, "initrd", cell(r, i, C_INITRD) ?: "", false);
	rc = rc < 0 ? rc : ADD_STR(b, "error", cell(r, i, C_ERROR), false);
	rc = rc < 0 ? rc : add_volume(b, r, i);
	rc = rc < 0 ? rc : add_backend_status(b, r, i);
	rc = rc < 0 ? rc : ADD_NUM(b, "created_at", cell(r, i, C_CREATED));
	rc = rc < 0 ? rc : ADD_NUM(b, "updated_at", cell(r, i, C_UPDATED));
	rc = rc < 0 ? rc : add_exit(b, cell(r, i, C_EXIT));
	return rc < 0 ? rc : nq_buf_add(b, "}", 1);
}

/* Rows as a JSON array text (caller frees); a VM listed twice (two live
 * volumes) once. NULL on a malformed result or out of memory. */
static char *
rows_text(const struct db_rows *rows)
{
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(VMS_TEXT_MAX, false);
	int r = nq_buf_add(&b, "[", 1);
	bool first = true;

	if (rows->ncols != C_N)
		return NULL;
	for (unsigned i = 0; r >= 0 && i < rows->nrows; i++) {
		const char *id = cell(rows, i, C_ID);
		if (!id || (i > 0 && !strcmp(id, cell(rows, i - 1, C_ID) ?: "")))
			continue;
		if (!first)
			r = nq_buf_add(&b, ",", 1);
		first = false;
		r = r < 0 ? r : add_row(&b, rows, i);
	}
	if (r >= 0)
		r = nq_buf_add(&b, "]", 1);
	return r < 0 ? NULL : nq_buf_steal(&b);
}

/* Pages already built, valid while the database's data version is the
 * one they were built under (db_data_version: any commit by any manager
 * changes it). A cache of the database, checked on every use: it never
 * answers with data another manager has changed since. */
#define PAGE_CACHE_SLOTS 8
#define PAGE_KEY_MAX 192

static struct {
	pthread_mutex_t lock;
	struct page {
		char key[PAGE_KEY_MAX]; /* version + query; "" when free */
		char *text;
		long long total;
		unsigned long used;
	} slot[PAGE_CACHE_SLOTS];
	unsigned long clock;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static bool
cache_get(const char *key, char **ret_text, long long *ret_total)
{
	bool hit = false;

	pthread_mutex_lock(&cache.lock);
	for (size_t i = 0; i < PAGE_CACHE_SLOTS && !hit; i++) {
		struct page *p = &cache.slot[i];
		if (p->text && !strcmp(p->key, key) && (*ret_text = strdup(p->text))) {
			*ret_total = p->total;
			p->used = ++cache.clock;
			hit = true;
		}
	}
	pthread_mutex_unlock(&cache.lock);
	return hit;
}

static void
cache_put(const char *key, const char *text, long long total)
{
	char *copy = strdup(text);
	struct page *old;

	if (!copy)
		return;
	pthread_mutex_lock(&cache.lock);
	old = &cache.slot[0];
	for (size_t i = 0; i < PAGE_CACHE_SLOTS; i++)
		if (!cache.slot[i].text || cache.slot[i].used < old->used)
			old = &cache.slot[i];
	free(old->text);
	snprintf(old->key, sizeof old->key, "%s", key);
	old->text = copy;
	old->total = total;
	old->used = ++cache.clock;
	pthread_mutex_unlock(&cache.lock);
}

void
vms_list_cache_clear(void)
{
	pthread_mutex_lock(&cache.lock);
	for (size_t i = 0; i < PAGE_CACHE_SLOTS; i++) {
		free(cache.slot[i].text);
		cache.slot[i].text = NULL;
	}
	pthread_mutex_unlock(&cache.lock);
}

static char *
page_from_db(struct manager *m, const struct vm_list_query *q, long long *ret_total)
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
	*ret_total = num(&count, 0, 0);
	return rows_text(&rows);
}

char *
vms_list_page(struct manager *m, const struct vm_list_query *q, long long *ret_total)
{
	char ver[96], key[PAGE_KEY_MAX], *text = NULL;
	long long total = 0;
	bool keyed;

	/* The version first: a page built after it holds at least that data. */
	keyed = db_data_version(m->db, ver, sizeof ver) >= 0 &&
		(size_t)snprintf(key, sizeof key, "%s|%u|%llu|%s|%s", ver, q->limit,
			q->offset, q->host_id ? q->host_id : "\x01",
			q->state ? q->state : "\x01") < sizeof key;
	if (!keyed || !cache_get(key, &text, &total)) {
		text = page_from_db(m, q, &total);
		if (text && keyed)
			cache_put(key, text, total);
	}
	if (text && ret_total)
		*ret_total = total;
	return text;
}

json_t *
vms_get_json(struct manager *m, const char *id, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	_cleanup_free_ char *text = NULL;
	const char *p[] = { NULL, NULL, id };
	json_t *arr, *vm;

	if (db_query(m->db, "SELECT " LIST_COLS LIST_FROM LIST_WHERE, 3, p, &rows) < 0 ||
		!(text = rows_text(&rows)) || !(arr = json_loads(text, 0, NULL))) {
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
