/* Errors of the nqrust CLI. Without --json: one "nqrust: …" line on
 * stderr. With --json: the API's error shape {"error": {"code",
 * "message", "field"?, "status"?}} on stdout (where --json output goes),
 * and the same line on stderr unless stderr is a terminal (a script that
 * reads either stream gets JSON; a person sees it once). The exit status
 * is non-zero either way (1, or 2 for a usage error). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/cli.h"

bool cli_json_errors;

/* One error object per run, the first (the cause): a caller that adds
 * its own report after it (usage after a bad option) prints nothing more,
 * so each stream stays one JSON document. */
static void
emit_json(json_t *err)
{
	static bool emitted;
	json_t *o;
	char *s;

	if (emitted)
		return;
	emitted = true;
	o = json_pack("{s:O}", "error", err);
	s = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;

	if (s) {
		printf("%s\n", s);
		fflush(stdout);
		if (!isatty(STDERR_FILENO))
			fprintf(stderr, "%s\n", s);
		free(s);
	}
	json_decref(o);
}

void
cli_errf(const char *code, const char *field, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!cli_json_errors) {
		fprintf(stderr, "nqrust: %s\n", msg);
		return;
	}
	json_t *e = json_pack("{s:s, s:s}", "code", code, "message", msg);
	if (e && field)
		json_object_set_new(e, "field", json_string(field));
	if (e)
		emit_json(e);
	json_decref(e);
}

/* The extras some errors carry (backend_in_use: volumes; host_in_use:
 * VMs), for people. */
static void
print_extras(json_t *e)
{
	json_t *vols = json_object_get(e, "volumes"), *vms = json_object_get(e, "vms"), *v;
	size_t i;

	json_array_foreach(vols, i, v)
		fprintf(stderr, "  volume %s\n", json_string_value(v) ?: "?");
	json_array_foreach(vms, i, v) {
		const char *id = json_string_value(v);
		const char *name = json_string_value(json_object_get(v, "name"));

		if (!id)
			id = json_string_value(json_object_get(v, "id"));
		fprintf(stderr, "  vm %s%s%s%s\n", id ? id : "?", name ? " (" : "",
			name ? name : "", name ? ")" : "");
	}
}

int
cli_print_error(int status, json_t *reply)
{
	json_t *e = json_object_get(reply, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *field = json_string_value(json_object_get(e, "field"));

	if (cli_json_errors) {
		json_t *copy = json_is_object(e) && code && msg
				       ? json_deep_copy(e)
				       : json_pack("{s:s, s:s}", "code",
						 "unexpected_reply", "message",
						 "the manager sent no error object");
		if (copy) {
			json_object_set_new(copy, "status", json_integer(status));
			emit_json(copy);
		}
		json_decref(copy);
		return 1;
	}
	fprintf(stderr, "nqrust: error: %s (HTTP %d, code %s%s%s)\n",
		msg ? msg : "unexpected reply", status, code ? code : "-",
		field ? ", field " : "", field ? field : "");
	print_extras(e);
	if (status == 401)
		fprintf(stderr, "nqrust: log in with: nqrust login --username USER\n");
	return 1;
}
