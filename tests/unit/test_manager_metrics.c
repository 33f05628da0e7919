/* Unit tests: src/manager/services/metrics.c: label values escaped as the
 * Prometheus text format 0.0.4 wants, and the HELP/TYPE lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>

#include "manager/services/metrics_internal.h"

static char *
render_label(const char *v)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	metrics_label(f, v);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void
test_label_escapes(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain-name_1.0", "plain-name_1.0" },
		{ "say \"hi\"", "say \\\"hi\\\"" },
		{ "C:\\path", "C:\\\\path" },
		{ "two\nlines", "two\\nlines" },
		{ "\\\"\n", "\\\\\\\"\\n" },
		{ "", "" },
		{ "/v1/vms/{id}", "/v1/vms/{id}" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *got = render_label(cases[i].in);
		assert_string_equal(got, cases[i].out);
		free(got);
	}
}

static void
test_head(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	(void)state;

	metrics_head(f, "nqrust_x_total", "counter", "Things.");
	fclose(f);
	assert_string_equal(buf,
		"# HELP nqrust_x_total Things.\n# TYPE nqrust_x_total counter\n");
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escapes),
		cmocka_unit_test(test_head),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
