/* Typed rows of the manager's VM and volume queries. Every query that
 * reads VM or volume rows selects VM_ROW_COLS or VOLUME_ROW_COLS, and one
 * reader per row type maps the columns onto a struct once, by the index
 * the column list gives them. SQL NULL is handled here, explicitly: text
 * becomes "" (with a has_ flag where absence means something), numbers
 * become 0. A number cell that is not a decimal integer, a NULL id or a
 * result with the wrong number of columns is -EPROTO, never a crash.
 *
 * The strings point into the struct db_rows the row was read from: they
 * are valid while it is (the caller keeps both). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "manager/db/db.h"

#define VM_ROW_COLS                                                                       \
	"id, name, vcpus, memory_mib, image_id, backend_id, state,"                       \
	" host_id, kernel, initrd, error, created_at, updated_at"

struct vm_row {
	const char *id;
	const char *name;
	unsigned vcpus, memory_mib;
	const char *image_id;   /* "" when NULL */
	const char *backend_id; /* "" when NULL */
	const char *state;
	const char *host_id; /* "" when NULL (has_host false) */
	bool has_host;
	const char *kernel;
	const char *initrd; /* "" when none */
	const char *error;  /* "" when NULL (has_error false) */
	bool has_error;
	long long created_at, updated_at;
};

/* Row i of a result of SELECT VM_ROW_COLS. */
int vm_row_read(const struct db_rows *rows, unsigned i, struct vm_row *ret);

#define VOLUME_ROW_COLS                                                                   \
	"id, backend_id, vm_id, path, size_bytes, allocated_bytes,"                       \
	" state"

struct volume_row {
	const char *id;
	const char *backend_id;
	const char *vm_id; /* "" when NULL (has_vm false) */
	bool has_vm;
	const char *path;
	uint64_t size_bytes;
	uint64_t allocated_bytes; /* 0 when NULL (has_allocated false) */
	bool has_allocated;
	const char *state;
};

/* Row i of a result of SELECT VOLUME_ROW_COLS. */
int volume_row_read(const struct db_rows *rows, unsigned i, struct volume_row *ret);
