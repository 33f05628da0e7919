/* Unit tests: src/manager/backends/backend_smb.c config parsing, and its agent
 * conversation checked byte for byte against a scripted fake agent on a
 * unix socket (also covers agent_client.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "manager/agent_client.h"
#include "manager/backends/backend.h"
#include "common/json_util.h"
#include "common/nq_buf.h"

/* ---- parsing ---------------------------------------------------------- */

static struct backend_env env = { 0 };

static int
parse(enum parse_mode mode, const char *json, const void *base, void *cfg,
	struct secret **pw, struct nq_error *err)
{
	json_t *j = json_loads(json, 0, NULL);
	int r;

	assert_non_null(j);
	memset(err, 0, sizeof *err);
	r = backend_smb_ops.parse(&env, mode, j, base, cfg, pw, err);
	json_decref(j);
	return r;
}

static void
test_parse_ok_and_render(void **state)
{
	char cfg[8192] = { 0 };
	struct secret *pw = NULL;
	struct nq_error err;
	(void)state;

	assert_int_equal(
		parse(PARSE_CREATE,
			"{\"server\":\"NAS.Example.com\",\"share\":\"vms\","
			"\"username\":\"bob\",\"password\":\"p,a=s\\\"s\",\"smb_version\":\"3.11\","
			"\"subdir\":\"a/b\",\"mount_options\":\"port=4450\"}",
			NULL, cfg, &pw, &err),
		0);
	assert_non_null(pw);
	assert_string_equal(pw->buf, "p,a=s\"s");
	assert_true(backend_smb_ops.uses_password(cfg));
	json_t *out = backend_smb_ops.to_json(&env, cfg);
	char *s = json_dumps(out, JSON_SORT_KEYS | JSON_COMPACT);
	assert_null(strstr(s, "p,a=s"));
	assert_null(strstr(s, "password"));
	assert_non_null(strstr(s, "\"server\":\"nas.example.com\""));
	assert_non_null(strstr(s, "\"subdir\":\"a/b\""));
	assert_non_null(strstr(s, "\"smb_version\":\"3.11\""));
	free(s);
	json_decref(out);
	secret_free(pw);
}

static void
test_parse_errors_name_field(void **state)
{
	static const struct {
		const char *json, *field, *code;
	} cases[] = {
		{ "{\"share\":\"s\"}", "config.server", "missing_field" },
		{ "{\"server\":\"h\"}", "config.share", "missing_field" },
		{ "{\"server\":\"h h\",\"share\":\"s\"}", "config.server", "invalid_field" },
		{ "{\"server\":\"h\",\"share\":\"s\",\"smb_version\":\"1.0\"}",
			"config.smb_version", "invalid_field" },
		{ "{\"server\":\"h\",\"share\":\"s\",\"subdir\":\"../x\"}",
			"config.subdir", "invalid_field" },
		{ "{\"server\":\"h\",\"share\":\"s\",\"mount_options\":\"password=x\"}",
			"config.mount_options", "invalid_field" },
		{ "{\"server\":\"h\",\"share\":\"s\",\"username\":\"u\"}",
			"config.password", "missing_field" },
		{ "{\"server\":\"h\",\"share\":\"s\",\"password\":\"p\"}",
			"config.password", "invalid_field" },
		{ "{\"server\":\"h\",\"share\":\"s\",\"nope\":\"p\"}", "config.nope",
			"unknown_field" },
		{ "{\"server\":\"h\",\"share\":5}", "config.share", "invalid_field" },
		{ "{\"server\":\"h\",\"share\":\"s\",\"domain\":\"D\"}", "config.domain",
			"invalid_field" },
	};
	char cfg[8192];
	struct secret *pw = NULL;
	struct nq_error err;
	(void)state;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memset(cfg, 0, sizeof cfg);
		assert_int_equal(parse(PARSE_CREATE, cases[i].json, NULL, cfg, &pw, &err),
			-EINVAL);
		assert_null(pw);
		assert_string_equal(err.field, cases[i].field);
		assert_string_equal(err.code, cases[i].code);
		/* A refused option value is not echoed (it might be a secret). */
		assert_null(strstr(err.message, "password=x"));
	}
}

static void
test_update_merges_and_refuses_password(void **state)
{
	char base[8192] = { 0 }, cfg[8192] = { 0 };
	struct secret *pw = NULL;
	struct nq_error err;
	(void)state;

	assert_int_equal(parse(PARSE_CREATE, "{\"server\":\"h\",\"share\":\"s\"}", NULL,
				 base, &pw, &err),
		0);
	assert_int_equal(parse(PARSE_UPDATE, "{\"subdir\":\"x\"}", base, cfg, &pw, &err),
		0);
	assert_false(backend_smb_ops.mount_differs(base, base));
	assert_true(backend_smb_ops.mount_differs(base, cfg));
	assert_false(backend_smb_ops.creds_differ(base, cfg));
	memset(cfg, 0, sizeof cfg);
	assert_int_equal(parse(PARSE_UPDATE, "{\"password\":\"x\"}", base, cfg, &pw, &err),
		-EINVAL);
	assert_string_equal(err.field, "config.password");
	memset(cfg, 0, sizeof cfg);
	assert_int_equal(parse(PARSE_UPDATE, "{\"server\":null}", base, cfg, &pw, &err),
		-EINVAL);
	assert_string_equal(err.field, "config.server");
	/* PARSE_LOAD accepts a user without a password (it is on the agent). */
	memset(cfg, 0, sizeof cfg);
	assert_int_equal(
		parse(PARSE_LOAD, "{\"server\":\"h\",\"share\":\"s\",\"username\":\"u\"}",
			NULL, cfg, &pw, &err),
		0);
	assert_true(backend_smb_ops.creds_differ(base, cfg));
}

/* ---- fake agent --------------------------------------------------------- */

#define MAX_EXCHANGES 8

struct fake {
	char path[108];
	int fd;
	const char *replies[MAX_EXCHANGES];
	char requests[MAX_EXCHANGES][4096];
	int n;
	pthread_t th;
};

static void
read_request(int c, char *buf, size_t sz)
{
	size_t len = 0;
	long want = -1;

	while (len + 1 < sz) {
		ssize_t k = read(c, buf + len, sz - 1 - len);
		if (k <= 0)
			break;
		len += (size_t)k;
		buf[len] = '\0';
		char *end = strstr(buf, "\r\n\r\n");
		if (!end)
			continue;
		if (want < 0) {
			char *cl = strcasestr(buf, "Content-Length:");
			want = cl && cl < end ? strtol(cl + 15, NULL, 10) : 0;
		}
		if ((long)(len - (size_t)(end + 4 - buf)) >= want)
			break;
	}
	buf[len] = '\0';
}

static void *
fake_main(void *arg)
{
	struct fake *f = arg;

	for (int i = 0; i < MAX_EXCHANGES && f->replies[i]; i++) {
		int c = accept(f->fd, NULL, NULL);
		if (c < 0)
			break;
		read_request(c, f->requests[i], sizeof f->requests[i]);
		f->n = i + 1;
		if (write(c, f->replies[i], strlen(f->replies[i])) < 0)
			break;
		close(c);
	}
	return NULL;
}

static void
fake_start(struct fake *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(f->path, sizeof f->path, "/tmp/nqrust-fake-agent-%d.sock", (int)getpid());
	unlink(f->path);
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
	f->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->fd >= 0);
	assert_int_equal(bind(f->fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->fd, 8), 0);
	pthread_create(&f->th, NULL, fake_main, f);
}

static void
fake_stop(struct fake *f)
{
	shutdown(f->fd, SHUT_RDWR);
	close(f->fd);
	pthread_join(f->th, NULL);
	unlink(f->path);
}

#define R204 "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
#define R422                                                                              \
	"HTTP/1.1 422 Unprocessable\r\nContent-Type: application/json\r\n"                \
	"Content-Length: 71\r\nConnection: close\r\n\r\n"                                 \
	"{\"error\":{\"code\":\"smb_auth_failed\",\"message\":\"wrong user or password\"}}"

static bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static const char *
body_of(const char *req)
{
	const char *b = strstr(req, "\r\n\r\n");
	return b ? b + 4 : "";
}

static void
test_create_failure_cleans_up(void **state)
{
	struct fake f = { .replies = { R204, R422, R204, R204 } };
	char spec[128], cfg[8192] = { 0 };
	struct secret *pw = NULL;
	struct nq_error err;
	struct backend_env e = { .call_timeout_ms = 5000, .status_timeout_ms = 1000 };
	(void)state;

	assert_int_equal(
		parse(PARSE_CREATE,
			"{\"server\":\"h\",\"share\":\"s\","
			"\"username\":\"bob\",\"domain\":\"WG\",\"password\":\"p\\\"w\\\\d\","
			"\"mount_options\":\"port=4450\"}",
			NULL, cfg, &pw, &err),
		0);
	fake_start(&f);
	snprintf(spec, sizeof spec, "unix:%s", f.path);
	assert_int_equal(agent_client_new(spec, NULL, &e.agent), 0);
	memset(&err, 0, sizeof err);
	assert_int_equal(backend_smb_ops.create(&e, "0b7c8a3e-0000-4000-8000-000000000001",
				 cfg, pw, &err),
		-EREMOTEIO);
	fake_stop(&f);
	agent_client_free(e.agent);
	secret_free(pw);

	/* The agent's code and message reach the caller unchanged. */
	assert_string_equal(err.code, "smb_auth_failed");
	assert_string_equal(err.message, "wrong user or password");
	assert_int_equal(f.n, 4);
	assert_true(starts_with(f.requests[0],
		"PUT /v1/storage/smb/credentials/"
		"0b7c8a3e-0000-4000-8000-000000000001 HTTP/1.1\r\n"));
	assert_string_equal(body_of(f.requests[0]),
		"{\"username\":\"bob\",\"password\":\"p\\\"w\\\\d\",\"domain\":\"WG\"}");
	assert_true(starts_with(f.requests[1], "POST /v1/storage/smb/mounts HTTP/1.1\r\n"));
	json_t *m = json_loads(body_of(f.requests[1]), 0, NULL);
	assert_non_null(m);
	assert_string_equal(json_string_value(json_object_get(m, "backend_id")),
		"0b7c8a3e-0000-4000-8000-000000000001");
	assert_string_equal(json_string_value(json_object_get(m, "username")), "bob");
	assert_string_equal(json_string_value(json_object_get(m, "mount_options")),
		"port=4450");
	assert_null(json_object_get(m, "password"));
	json_decref(m);
	assert_true(starts_with(f.requests[2], "DELETE /v1/storage/smb/mounts/0b7c8a3e"));
	assert_true(starts_with(f.requests[3],
		"DELETE /v1/storage/smb/credentials/0b7c8a3e"));
	for (int i = 1; i < 4; i++)
		assert_null(strstr(f.requests[i], "p\\\"w"));
}

static void
test_agent_down_is_unavailable(void **state)
{
	struct agent_client *a;
	struct agent_reply rep;
	struct nq_error err = { 0 };
	(void)state;

	assert_int_equal(agent_client_new("unix:/nonexistent/agent.sock", NULL, &a), 0);
	assert_int_equal(agent_call(a, "GET", "/healthz", NULL, 0, 1000, &rep, &err),
		-EHOSTUNREACH);
	assert_string_equal(err.code, "agent_unavailable");
	assert_int_equal(rep.status, 0);
	agent_client_free(a);
	assert_int_equal(agent_client_new("ftp://x", NULL, &a), -EINVAL);
}

/* The escaper that builds the credentials body (a wiping nq_buf). */
static void
test_json_buf_add_string(void **state)
{
	struct nq_buf b = NQ_BUF_INIT(64, true);
	(void)state;

	assert_int_equal(json_buf_add_string(&b, "a\"b\\c\n\x01\x1f \xc3\xa9"), 0);
	assert_string_equal(nq_buf_str(&b),
		"\"a\\\"b\\\\c\\u000a\\u0001\\u001f \xc3\xa9\"");
	nq_buf_release(&b);
	assert_int_equal(json_buf_add_string(&b, ""), 0);
	assert_string_equal(nq_buf_str(&b), "\"\"");
	nq_buf_release(&b);
	b.max = 8;
	assert_int_equal(json_buf_add_string(&b, "0123456789"), -ENOSPC);
	assert_true(b.overflow);
	assert_true(b.len <= 8);
	nq_buf_release(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok_and_render),
		cmocka_unit_test(test_parse_errors_name_field),
		cmocka_unit_test(test_update_merges_and_refuses_password),
		cmocka_unit_test(test_create_failure_cleans_up),
		cmocka_unit_test(test_agent_down_is_unavailable),
		cmocka_unit_test(test_json_buf_add_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
