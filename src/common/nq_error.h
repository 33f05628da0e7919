/* Typed API errors: {code, field, message}, carried from validation up to
 * the route, which turns them into the contract's error body. */
#pragma once

#include <stdbool.h>

#include "common/macro.h"

struct nq_error {
	char code[48];  /* snake_case, e.g. "invalid_field", "smb_auth_failed" */
	char field[64]; /* "" when no field is at fault */
	char message[384];
};

/* Fill *err (may be NULL: then nothing happens). Always returns -EINVAL so
 * validators can `return nq_error_set(...)`. */
int nq_error_set(struct nq_error *err, const char *code, const char *field,
	const char *fmt, ...) _printf_(4, 5);
/* Same, returning `ret` instead of -EINVAL. */
int nq_error_setr(struct nq_error *err, int ret, const char *code, const char *field,
	const char *fmt, ...) _printf_(5, 6);
bool nq_error_is_set(const struct nq_error *err);
/* The one table from error code to HTTP status (unknown codes: 500). */
int nq_error_http_status(const char *code);
