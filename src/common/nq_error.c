#include "common/nq_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void
fill(struct nq_error *err, const char *code, const char *field, const char *fmt, va_list ap)
{
	snprintf(err->code, sizeof err->code, "%s", code);
	snprintf(err->field, sizeof err->field, "%s", field ? field : "");
	vsnprintf(err->message, sizeof err->message, fmt, ap);
}

int
nq_error_set(struct nq_error *err, const char *code, const char *field, const char *fmt,
	...)
{
	va_list ap;

	if (!err)
		return -EINVAL;
	va_start(ap, fmt);
	fill(err, code, field, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int
nq_error_setr(struct nq_error *err, int ret, const char *code, const char *field,
	const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return ret;
	va_start(ap, fmt);
	fill(err, code, field, fmt, ap);
	va_end(ap);
	return ret;
}

bool
nq_error_is_set(const struct nq_error *err)
{
	return err && err->code[0] != '\0';
}

static const struct {
	const char *code;
	int status;
} status_table[] = {
	{ "invalid_field", 400 },
	{ "invalid_json", 400 },
	{ "unknown_field", 400 },
	{ "missing_field", 400 },
	{ "bad_request", 400 },
	{ "unauthorized", 401 },
	{ "forbidden", 403 },
	{ "csrf_required", 403 },
	{ "not_found", 404 },
	{ "method_not_allowed", 405 },
	{ "conflict", 409 },
	{ "already_exists", 409 },
	{ "name_taken", 409 },
	{ "backend_in_use", 409 },
	{ "backend_is_default", 409 },
	{ "invalid_state", 409 },
	{ "busy", 409 },
	{ "cancelled", 409 },
	{ "volume_leased", 409 },
	{ "body_too_large", 413 },
	{ "unsupported_media_type", 415 },
	{ "too_many_requests", 429 },
	{ "smb_auth_failed", 422 },
	{ "smb_access_denied", 422 },
	{ "smb_share_not_found", 422 },
	{ "smb_bad_option", 422 },
	{ "smb_unreachable", 422 },
	{ "smb_timeout", 422 },
	{ "smb_cred_missing", 422 },
	{ "smb_not_writable", 422 },
	{ "not_writable", 422 },
	{ "smb_mount_failed", 422 },
	{ "cifs_unavailable", 422 },
	{ "image_not_found", 422 },
	{ "volume_exists", 409 },
	{ "volume_missing", 422 },
	{ "vmm_failed", 422 },
	{ "out_of_range", 422 },
	{ "no_host", 422 },
	{ "host_unsuitable", 422 },
	{ "host_in_use", 409 },
	{ "host_builtin", 409 },
	{ "user_builtin", 409 },
	{ "insufficient_memory", 422 },
	{ "host_exists", 409 },
	{ "host_unreachable", 409 },
	{ "backend_not_shared", 409 },
	{ "agent_fingerprint_mismatch", 422 },
	{ "agent_auth_failed", 422 },
	{ "no_space", 507 },
	{ "io_error", 500 },
	{ "agent_unavailable", 503 },
	{ "internal_error", 500 },
};

int
nq_error_http_status(const char *code)
{
	for (size_t i = 0; i < ARRAY_SIZE(status_table); i++)
		if (strcmp(status_table[i].code, code) == 0)
			return status_table[i].status;
	return 500;
}
