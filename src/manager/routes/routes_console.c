/* /v1/vms/{id}/console (DESIGN.md §5): the serial log's tail, a long-poll
 * stream, input, and a WebSocket that carries both (console_ws.c). Same
 * authentication as every route (mgr_auth_hook); a WebSocket cannot send
 * X-CSRF-Token, so a cookie-authenticated one must come from this origin.
 * Viewers read the console but never type into it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/debug_gate.h"
#include "common/macro.h"
#include "manager/agent_client.h"
#include "manager/manager.h"
#include "manager/routes/console.h"
#include "manager/routes/routes.h"
#include "manager/routes/ws.h"
#include "manager/services/hostpool.h"
#include "manager/services/vms.h"

#define STREAM_WAIT_MAX 25

int
console_env(struct manager *m, const char *id, struct backend_env *env,
	struct http_response *resp)
{
	struct nq_error err = { 0 };
	json_t *vm = strlen(id) <= AUTH_UUID_LEN ? vms_get_json(m, id, &err) : NULL;
	const char *host;
	int r;

	if (!vm) {
		if (!nq_error_is_set(&err))
			nq_error_set(&err, "not_found", NULL, "no VM with id %.64s", id);
		http_reply_error(resp, &err);
		return -ENOENT;
	}
	host = json_string_value(json_object_get(vm, "host_id"));
	r = host ? hosts_env(m, host, env, &err)
		 : nq_error_setr(&err, -EAGAIN, "invalid_state", NULL,
			   "the VM has no host yet: it has never been started");
	json_decref(vm);
	if (r < 0)
		http_reply_error(resp, &err);
	return r;
}

int
console_send_input(const struct backend_env *env, const char *id, const void *buf,
	size_t len, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	char path[128];
	int r;

	snprintf(path, sizeof path, "/v1/vms/%s/console/input", id);
	r = agent_call(env->agent, "POST", path, buf, len, 5000, &rep, err);
	agent_reply_release(&rep);
	return r;
}

/* ?name=N within [0, max]: 422 out_of_range naming it otherwise. */
static bool
query_num(struct http_request *req, struct http_response *resp, const char *name,
	unsigned long long max, unsigned long long def, unsigned long long *ret)
{
	const char *v = http_query(req, name);
	char *end = NULL;

	*ret = def;
	if (!v)
		return true;
	errno = 0;
	*ret = strtoull(v, &end, 10);
	if (!*v || *end || errno || v[0] == '-' || *ret > max) {
		http_reply_errorf(resp, "out_of_range", name,
			"%s must be a whole number from 0 to %llu", name, max);
		return false;
	}
	return true;
}

/* The agent's bytes as the reply, with its offsets. */
static void
proxy_bytes(struct http_request *req, struct http_response *resp, const char *agent_path,
	long timeout_ms)
{
	struct agent_call_ext x = { .raw = true };
	struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	struct nq_error err = { 0 };

	if (console_env(req->userdata, req->params[0], &env, resp) < 0)
		return;
	if (agent_call_ext(env.agent, "GET", agent_path, NULL, 0, timeout_ms, &x, &rep,
		    &err) < 0) {
		http_reply_error(resp, &err);
	} else {
		free(resp->body);
		resp->status = 200;
		resp->body = x.raw_body ? x.raw_body : strdup("");
		resp->body_len = x.raw_body ? x.raw_len : 0;
		resp->content_type = "text/plain; charset=utf-8";
		if (asprintf(&resp->extra_headers, "X-Offset: %lld\nX-Next-Offset: %lld\n",
			    x.offset, x.next_offset) < 0)
			resp->extra_headers = NULL;
	}
	agent_reply_release(&rep);
	hosts_env_release(&env);
}

/* GET /v1/vms/{id}/console?tail=N: the last N bytes (default 64 KiB, at
 * most 1 MiB) of the serial log. */
static void
console_tail(struct http_request *req, struct http_response *resp)
{
	unsigned long long tail;
	char path[160];

	if (!query_num(req, resp, "tail", CONSOLE_TAIL_MAX, CONSOLE_TAIL_DEFAULT, &tail))
		return;
	snprintf(path, sizeof path, "/v1/vms/%.40s/console?tail=%llu", req->params[0],
		tail);
	proxy_bytes(req, resp, path, 10000);
}

/* GET /v1/vms/{id}/console/stream?offset=N&wait=S: the bytes after offset
 * (X-Next-Offset says where to go on), waiting up to S s for some. */
static void
console_stream(struct http_request *req, struct http_response *resp)
{
	unsigned long long off, wait;
	char path[200];

	if (!query_num(req, resp, "offset", 1ULL << 62, 0, &off) ||
		!query_num(req, resp, "wait", STREAM_WAIT_MAX, 0, &wait))
		return;
	snprintf(path, sizeof path, "/v1/vms/%.40s/console/stream?offset=%llu&wait=%llu",
		req->params[0], off, wait);
	proxy_bytes(req, resp, path, (long)(wait + 10) * 1000);
}

/* POST /v1/vms/{id}/console/input: raw bytes (at most 4 KiB) to the
 * serial port; viewers get 403 from the auth hook (a write). */
static void
console_input(struct http_request *req, struct http_response *resp)
{
	struct backend_env env = { 0 };
	struct nq_error err = { 0 };

	if (console_env(req->userdata, req->params[0], &env, resp) < 0)
		return;
	if (console_send_input(&env, req->params[0], req->body, req->body_len, &err) < 0)
		http_reply_error(resp, &err);
	else
		http_reply_empty(resp, 204);
	hosts_env_release(&env);
}

/* A cookie-authenticated WebSocket must come from a page of this origin:
 * Origin's host equals Host. */
static bool
same_origin(struct http_request *req)
{
	const char *origin = http_header(req, "Origin"), *host = http_header(req, "Host");
	const char *o;

	if (!origin)
		return !http_header(req, "Cookie") || http_header(req, "Authorization");
	if (!host)
		return false;
	o = strstr(origin, "://");
	return o && !strcmp(o + 3, host);
}

static bool
handshake_ok(struct http_request *req, char accept[29], struct http_response *resp)
{
	const char *up = http_header(req, "Upgrade"),
		   *ver = http_header(req, "Sec-WebSocket-Version");

	if (!up || strcasecmp(up, "websocket") || !ver || strcmp(ver, "13") ||
		ws_accept_key(http_header(req, "Sec-WebSocket-Key"), accept) < 0) {
		http_reply_errorf(resp, "bad_request", NULL,
			"this endpoint takes a WebSocket (version 13) handshake");
		return false;
	}
	if (!same_origin(req)) {
		http_reply_errorf(resp, "forbidden", NULL,
			"a console WebSocket must come from a page of this manager");
		return false;
	}
	return true;
}

/* GET /v1/vms/{id}/console/ws[?tail=N]: the live console. */
static void
console_ws(struct http_request *req, struct http_response *resp)
{
	struct backend_env env = { 0 };
	unsigned long long tail;
	struct console_session *s;
	char accept[29];

	if (!query_num(req, resp, "tail", CONSOLE_TAIL_MAX, CONSOLE_TAIL_DEFAULT, &tail) ||
		!handshake_ok(req, accept, resp) ||
		console_env(req->userdata, req->params[0], &env, resp) < 0)
		return;
	s = console_session_new(req->userdata, req->params[0], &env,
		!strcmp(req->auth_role, "admin"), (unsigned)tail, resp);
	if (!s)
		return;
	http_reply_empty(resp, 101);
	if (asprintf(&resp->extra_headers,
		    "Upgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Accept: %s\n",
		    accept) < 0) {
		resp->extra_headers = NULL;
		console_session_run(s, -1, NULL, 0, NULL);
		http_reply_errorf(resp, "internal_error", NULL, "out of memory");
		return;
	}
	resp->upgrade = console_session_run;
	resp->upgrade_ctx = s;
	/* Tests: the client may go away here, before the 101 is sent. */
	debug_gate("console-ws-switch", NULL, NULL);
}

const struct http_route console_routes[] = {
	{ "GET", "/v1/vms/{id}/console", console_tail, 0, 0, NULL },
	{ "GET", "/v1/vms/{id}/console/stream", console_stream, 0, 0, NULL },
	{ "POST", "/v1/vms/{id}/console/input", console_input, ROUTE_RAW_BODY,
		CONSOLE_INPUT_MAX, NULL },
	{ "GET", "/v1/vms/{id}/console/ws", console_ws, 0, 0, NULL },
};
const size_t console_routes_count = ARRAY_SIZE(console_routes);
