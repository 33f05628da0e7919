/* Typed VM and volume rows: the one place that knows their column order
 * and what SQL NULL means in each column. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "manager/db/rows.h"

enum vm_col {
	VM_ID,
	VM_NAME,
	VM_VCPUS,
	VM_MEMORY,
	VM_IMAGE,
	VM_BACKEND,
	VM_STATE,
	VM_HOST,
	VM_KERNEL,
	VM_INITRD,
	VM_ERROR,
	VM_CREATED,
	VM_UPDATED,
	VM_NCOLS
};

enum volume_col {
	VOL_ID,
	VOL_BACKEND,
	VOL_VM,
	VOL_PATH,
	VOL_SIZE,
	VOL_ALLOCATED,
	VOL_STATE,
	VOL_NCOLS
};

struct cursor {
	const struct db_rows *rows;
	unsigned row;
	int error; /* first -EPROTO */
};

/* Text cell; NULL → "" and *ret_present (may be NULL) false. */
static const char *
text(const struct cursor *c, unsigned col, bool *ret_present)
{
	const char *v = db_rows_get(c->rows, c->row, col);

	if (ret_present)
		*ret_present = v != NULL;
	return v ? v : "";
}

/* Integer cell; NULL → 0 and *ret_present (may be NULL) false. */
static long long
number(struct cursor *c, unsigned col, long long min, long long max, bool *ret_present)
{
	const char *v = db_rows_get(c->rows, c->row, col);
	char *end = NULL;
	long long n;

	if (ret_present)
		*ret_present = v != NULL;
	if (!v)
		return 0;
	/* Decimal digits with an optional '-': no blanks, no '+', no hex. */
	if (!(v[0] >= '0' && v[0] <= '9') && !(v[0] == '-' && v[1] >= '0' && v[1] <= '9')) {
		c->error = -EPROTO;
		return 0;
	}
	errno = 0;
	n = strtoll(v, &end, 10);
	if (errno || end == v || *end || n < min || n > max) {
		c->error = -EPROTO;
		return 0;
	}
	return n;
}

int
vm_row_read(const struct db_rows *rows, unsigned i, struct vm_row *ret)
{
	struct cursor c = { rows, i, 0 };
	struct vm_row v = { 0 };

	if (!rows || rows->ncols != VM_NCOLS || i >= rows->nrows ||
		!db_rows_get(rows, i, VM_ID))
		return -EPROTO;
	v.id = text(&c, VM_ID, NULL);
	v.name = text(&c, VM_NAME, NULL);
	v.vcpus = (unsigned)number(&c, VM_VCPUS, 0, UINT32_MAX, NULL);
	v.memory_mib = (unsigned)number(&c, VM_MEMORY, 0, UINT32_MAX, NULL);
	v.image_id = text(&c, VM_IMAGE, NULL);
	v.backend_id = text(&c, VM_BACKEND, NULL);
	v.state = text(&c, VM_STATE, NULL);
	v.host_id = text(&c, VM_HOST, &v.has_host);
	v.kernel = text(&c, VM_KERNEL, NULL);
	v.initrd = text(&c, VM_INITRD, NULL);
	v.error = text(&c, VM_ERROR, &v.has_error);
	v.created_at = number(&c, VM_CREATED, LLONG_MIN, LLONG_MAX, NULL);
	v.updated_at = number(&c, VM_UPDATED, LLONG_MIN, LLONG_MAX, NULL);
	if (c.error)
		return c.error;
	*ret = v;
	return 0;
}

int
volume_row_read(const struct db_rows *rows, unsigned i, struct volume_row *ret)
{
	struct cursor c = { rows, i, 0 };
	struct volume_row v = { 0 };

	if (!rows || rows->ncols != VOL_NCOLS || i >= rows->nrows ||
		!db_rows_get(rows, i, VOL_ID))
		return -EPROTO;
	v.id = text(&c, VOL_ID, NULL);
	v.backend_id = text(&c, VOL_BACKEND, NULL);
	v.vm_id = text(&c, VOL_VM, &v.has_vm);
	v.path = text(&c, VOL_PATH, NULL);
	v.size_bytes = (uint64_t)number(&c, VOL_SIZE, 0, LLONG_MAX, NULL);
	v.allocated_bytes = (uint64_t)number(&c, VOL_ALLOCATED, 0, LLONG_MAX,
		&v.has_allocated);
	v.state = text(&c, VOL_STATE, NULL);
	if (c.error)
		return c.error;
	*ret = v;
	return 0;
}
