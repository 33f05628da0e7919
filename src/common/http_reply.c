/* The response helpers of http_server.h: JSON bodies, the contract's error
 * shape, empty replies, request headers. */
#include "common/http_server.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
http_reply_json(struct http_response *r, int status, json_t *json)
{
	char *s = json ? json_dumps(json, JSON_COMPACT) : NULL;

	json_decref(json);
	free(r->body);
	r->status = s ? status : 500;
	r->body = s ? s
		    : strdup("{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}");
	r->body_len = r->body ? strlen(r->body) : 0;
	r->content_type = "application/json";
}

void
http_reply_error(struct http_response *r, const struct nq_error *err)
{
	json_t *e = json_pack("{s:s, s:s}", "code", err->code, "message", err->message);

	if (e && err->field[0])
		json_object_set_new(e, "field", json_string(err->field));
	http_reply_json(r, nq_error_http_status(err->code), json_pack("{s:o}", "error", e));
}

void
http_reply_errorf(struct http_response *r, const char *code, const char *field,
	const char *fmt, ...)
{
	struct nq_error err = { 0 };
	va_list ap;

	snprintf(err.code, sizeof err.code, "%s", code);
	snprintf(err.field, sizeof err.field, "%s", field ? field : "");
	va_start(ap, fmt);
	vsnprintf(err.message, sizeof err.message, fmt, ap);
	va_end(ap);
	http_reply_error(r, &err);
}

void
http_reply_empty(struct http_response *r, int status)
{
	free(r->body);
	r->body = NULL;
	r->body_len = 0;
	r->status = status;
	r->content_type = NULL;
}

const char *
http_header(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *
http_query(const struct http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}
