/* The HTTP wrapper over a real unix socket, driven by libcurl. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/http_server.h"
#include "common/json_util.h"

static char sock_path[256];
static struct http_server *srv;

static void
echo(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "name", "size", NULL };
	struct nq_error err = { 0 };
	json_t *body = NULL;
	const char *name;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "name", &name, &err) < 0) {
		json_decref(body);
		http_reply_error(resp, &err);
		return;
	}
	http_reply_json(resp, 201,
		json_pack("{s:s, s:s, s:s}", "name", name, "a", req->params[0], "b",
			req->params[1]));
	json_decref(body);
}

static void
get_thing(struct http_request *req, struct http_response *resp)
{
	http_reply_json(resp, 200,
		json_pack("{s:s, s:i}", "id", req->params[0], "uid", (int)req->peer_uid));
}

static void
open_route(struct http_request *req, struct http_response *resp)
{
	(void)req;
	http_reply_empty(resp, 204);
}

static int
deny_unless_header(struct http_request *req, struct http_response *resp)
{
	const char *h = http_header(req, "X-Let-Me-In");

	if (h && !strcmp(h, "yes"))
		return 0;
	http_reply_errorf(resp, "unauthorized", NULL, "no");
	return -1;
}

static void
static_files(struct http_request *req, struct http_response *resp)
{
	http_reply_json(resp, 200, json_pack("{s:s}", "path", req->path));
}

static const struct http_route routes[] = {
	{ "POST", "/v1/things/{a}/sub/{b}", echo, 0, 256, NULL },
	{ "GET", "/v1/things/{a}", get_thing, 0, 0, NULL },
	{ "GET", "/open", open_route, ROUTE_NO_AUTH, 0, NULL },
	{ "GET", "/ui/", static_files, ROUTE_NO_AUTH | ROUTE_PREFIX, 0, NULL },
};

struct buf {
	char data[4096];
	size_t len;
};

static size_t
collect(char *p, size_t sz, size_t n, void *u)
{
	struct buf *b = u;
	size_t k = sz * n;

	if (b->len + k >= sizeof b->data)
		k = sizeof b->data - b->len - 1;
	memcpy(b->data + b->len, p, k);
	b->len += k;
	b->data[b->len] = '\0';
	return sz * n;
}

static long
req(const char *method, const char *path, const char *ctype, const char *body, bool auth,
	struct buf *out)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char url[512];
	long code = 0;

	memset(out, 0, sizeof *out);
	snprintf(url, sizeof url, "http://x%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock_path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (ctype) {
		char hv[128];
		snprintf(hv, sizeof hv, "Content-Type: %s", ctype);
		h = curl_slist_append(h, hv);
	}
	if (auth)
		h = curl_slist_append(h, "X-Let-Me-In: yes");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return code;
}

static int
setup(void **state)
{
	struct http_server_opts o = { .routes = routes,
		.nroutes = 4,
		.unix_path = sock_path,
		.unix_mode = 0660,
		.auth = deny_unless_header };
	(void)state;
	snprintf(sock_path, sizeof sock_path, "/tmp/nq-http-test-%d.sock", getpid());
	return http_server_start(&o, &srv) == 0 ? 0 : -1;
}

static int
teardown(void **state)
{
	(void)state;
	http_server_stop(srv);
	return access(sock_path, F_OK) == 0 ? -1 : 0; /* socket removed */
}

static void
test_socket_mode(void **state)
{
	struct stat st;
	(void)state;
	assert_int_equal(stat(sock_path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
}

static void
test_params_and_json(void **state)
{
	struct buf b;
	(void)state;
	assert_int_equal(req("POST", "/v1/things/one/sub/two", "application/json",
				 "{\"name\":\"n\"}", true, &b),
		201);
	assert_string_equal(b.data, "{\"name\":\"n\",\"a\":\"one\",\"b\":\"two\"}");
	assert_int_equal(req("GET", "/v1/things/abc", NULL, NULL, true, &b), 200);
	assert_non_null(strstr(b.data, "\"id\":\"abc\""));
	/* SO_PEERCRED reported our own uid. */
	char want[32];
	snprintf(want, sizeof want, "\"uid\":%d", (int)getuid());
	assert_non_null(strstr(b.data, want));
}

static void
test_routing_errors(void **state)
{
	struct buf b;
	(void)state;
	assert_int_equal(req("GET", "/v1/nothing", NULL, NULL, true, &b), 404);
	assert_non_null(strstr(b.data, "\"code\":\"not_found\""));
	assert_int_equal(req("DELETE", "/v1/things/abc", NULL, NULL, true, &b), 405);
	assert_non_null(strstr(b.data, "\"code\":\"method_not_allowed\""));
	assert_int_equal(req("GET", "/v1/things/abc/extra", NULL, NULL, true, &b), 404);
	assert_int_equal(req("GET", "/v1/things/", NULL, NULL, true, &b), 404);
}

static void
test_auth_hook_runs_first(void **state)
{
	struct buf b;
	(void)state;
	assert_int_equal(req("GET", "/v1/things/abc", NULL, NULL, false, &b), 401);
	assert_string_equal(b.data,
		"{\"error\":{\"code\":\"unauthorized\",\"message\":\"no\"}}");
	assert_int_equal(req("GET", "/open", NULL, NULL, false, &b), 204);
	/* Unknown paths are 404 even without auth: route match comes first. */
	assert_int_equal(req("GET", "/v1/nothing", NULL, NULL, false, &b), 404);
}

static void
test_body_checks(void **state)
{
	struct buf b;
	char big[600];
	(void)state;
	assert_int_equal(req("POST", "/v1/things/a/sub/b", "text/plain",
				 "{\"name\":\"n\"}", true, &b),
		415);
	assert_int_equal(
		req("POST", "/v1/things/a/sub/b", "application/json; charset=utf-8",
			"{\"name\":\"n\"}", true, &b),
		201);
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	assert_int_equal(
		req("POST", "/v1/things/a/sub/b", "application/json", big, true, &b), 413);
	assert_int_equal(req("POST", "/v1/things/a/sub/b", "application/json",
				 "{\"name\":", true, &b),
		400);
	assert_non_null(strstr(b.data, "\"code\":\"invalid_json\""));
	assert_int_equal(req("POST", "/v1/things/a/sub/b", "application/json",
				 "{\"name\":\"a\",\"name\":\"b\"}", true, &b),
		400);
	assert_int_equal(req("POST", "/v1/things/a/sub/b", "application/json",
				 "{\"name\":\"a\",\"evil\":1}", true, &b),
		400);
	assert_non_null(strstr(b.data, "\"field\":\"evil\""));
	assert_int_equal(req("POST", "/v1/things/a/sub/b", "application/json",
				 "{\"size\":1}", true, &b),
		400);
	assert_non_null(strstr(b.data, "\"code\":\"missing_field\""));
	assert_non_null(strstr(b.data, "\"field\":\"name\""));
	assert_int_equal(
		req("POST", "/v1/things/a/sub/b", "application/json", "[1]", true, &b),
		400);
}

static void
test_prefix_route(void **state)
{
	struct buf b;
	(void)state;
	assert_int_equal(req("GET", "/ui/app/main.js", NULL, NULL, false, &b), 200);
	assert_string_equal(b.data, "{\"path\":\"/ui/app/main.js\"}");
	assert_int_equal(req("GET", "/ui", NULL, NULL, false, &b), 404);
	assert_int_equal(req("POST", "/ui/x", "application/json", "{}", false, &b), 405);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socket_mode),
		cmocka_unit_test(test_params_and_json),
		cmocka_unit_test(test_routing_errors),
		cmocka_unit_test(test_auth_hook_runs_first),
		cmocka_unit_test(test_body_checks),
		cmocka_unit_test(test_prefix_route),
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int r = cmocka_run_group_tests(tests, setup, teardown);
	curl_global_cleanup();
	return r;
}
