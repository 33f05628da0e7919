/* Unit tests: src/manager/mgr_config.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "manager/mgr_config.h"

static void
test_defaults(void **state)
{
	struct mgr_config c;
	char msg[256];
	(void)state;

	mgr_config_defaults(&c);
	assert_int_equal(mgr_config_finish(&c, msg, sizeof msg), 0);
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 18080);
	assert_string_equal(c.database, "sqlite:/var/lib/nqrust/manager/manager.db");
	assert_string_equal(c.agent, "unix:/run/nqrust/agent.sock");
	assert_string_equal(c.log_level, "info");
	assert_int_equal(c.refresh_interval, 5);
	assert_int_equal(c.status_timeout_ms, 1500);
	assert_int_equal(c.call_timeout_ms, 60000);
	assert_int_equal(c.provision_timeout, 3600);
	assert_int_equal(c.token_ttl, 43200);
	assert_int_equal(c.login_max_failures, 5);
	assert_int_equal(c.login_window, 60);
	assert_int_equal(c.login_lockout, 60);
	assert_int_equal(c.header_timeout, 15);
	assert_int_equal(c.max_connections, 1024);
	assert_int_equal(c.max_connections_per_address, 32);
	assert_string_equal(c.web_dir, "");
	assert_string_equal(c.metrics_listen, "");
}

static void
test_args_override(void **state)
{
	struct mgr_config c;
	char msg[256];
	char *argv[] = { "m", "--listen", "[::1]:9000", "--state-dir=/tmp/s", "--agent",
		"http://10.0.0.1:7000", "--refresh-interval", "2", NULL };
	(void)state;

	mgr_config_defaults(&c);
	assert_int_equal(mgr_config_args(&c, 8, argv, msg, sizeof msg), 0);
	assert_int_equal(mgr_config_finish(&c, msg, sizeof msg), 0);
	assert_string_equal(c.listen_host, "::1");
	assert_int_equal(c.listen_port, 9000);
	assert_string_equal(c.database, "sqlite:/tmp/s/manager.db");
	assert_string_equal(c.agent, "http://10.0.0.1:7000");
	assert_int_equal(c.refresh_interval, 2);
}

static void
test_bad_values(void **state)
{
	struct mgr_config c;
	char msg[256];
	char *unknown[] = { "m", "--colour", "blue", NULL };
	char *range[] = { "m", "--refresh-interval", "0", NULL };
	char *missing[] = { "m", "--listen", NULL };
	(void)state;

	mgr_config_defaults(&c);
	assert_int_equal(mgr_config_args(&c, 3, unknown, msg, sizeof msg), -EINVAL);
	assert_non_null(strstr(msg, "colour"));
	assert_int_equal(mgr_config_args(&c, 3, range, msg, sizeof msg), -EINVAL);
	assert_int_equal(mgr_config_args(&c, 2, missing, msg, sizeof msg), -EINVAL);
	snprintf(c.listen, sizeof c.listen, "nocolon");
	assert_int_equal(mgr_config_finish(&c, msg, sizeof msg), -EINVAL);
	mgr_config_defaults(&c);
	snprintf(c.agent, sizeof c.agent, "ftp://x");
	assert_int_equal(mgr_config_finish(&c, msg, sizeof msg), -EINVAL);
	mgr_config_defaults(&c);
	snprintf(c.state_dir, sizeof c.state_dir, "relative");
	assert_int_equal(mgr_config_finish(&c, msg, sizeof msg), -EINVAL);
}

static void
test_file(void **state)
{
	char path[] = "/tmp/nqrust-mgr-conf-XXXXXX";
	struct mgr_config c;
	char msg[256];
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");
	(void)state;

	fprintf(f, "# comment\n\nlisten = 0.0.0.0:1234\n  database=postgres://x/y  \n");
	fclose(f);
	mgr_config_defaults(&c);
	assert_int_equal(mgr_config_load(&c, path, msg, sizeof msg), 0);
	assert_string_equal(c.listen, "0.0.0.0:1234");
	assert_string_equal(c.database, "postgres://x/y");
	f = fopen(path, "w");
	fprintf(f, "listen = 1:2\nbogus line\n");
	fclose(f);
	assert_int_equal(mgr_config_load(&c, path, msg, sizeof msg), -EINVAL);
	assert_non_null(strstr(msg, ":2:"));
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_args_override),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
