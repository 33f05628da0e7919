/* Certificate fingerprints: the canonical form and every accepted and
 * refused spelling of user input. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/tls_fp.h"

/* SHA-256 of the empty string, as openssl prints it. */
static const char canon[] = "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:"
			    "27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55";
static const uint8_t digest[32] = { 0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a,
	0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93,
	0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55 };

static void
test_format(void **state)
{
	char out[TLS_FP_SIZE];
	uint8_t edges[32];

	(void)state;
	memset(out, 'x', sizeof(out));
	tls_fingerprint_format(digest, out);
	assert_string_equal(out, canon);
	assert_int_equal(strlen(out), TLS_FP_LEN);

	memset(edges, 0, sizeof(edges));
	edges[0] = 0x0f;
	edges[31] = 0xff;
	tls_fingerprint_format(edges, out);
	assert_string_equal(out,
		"0F:00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:"
		"00:00:00:00:00:00:00:00:00:00:00:00:00:00:00:FF");
}

static void
assert_parses(const char *in)
{
	char out[TLS_FP_SIZE];
	struct nq_error err = { 0 };

	assert_int_equal(tls_fingerprint_parse(in, out, &err), 0);
	assert_string_equal(out, canon);
	assert_false(nq_error_is_set(&err));
}

static void
test_parse_accepts(void **state)
{
	(void)state;
	assert_parses(canon);
	assert_parses("e3:b0:c4:42:98:fc:1c:14:9a:fb:f4:c8:99:6f:b9:24:"
		      "27:ae:41:e4:64:9b:93:4c:a4:95:99:1b:78:52:b8:55");
	assert_parses("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_parses("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852b855");
	assert_parses(
		"  e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n");
}

static void
assert_refused(const char *in)
{
	char out[TLS_FP_SIZE] = "untouched";
	struct nq_error err = { 0 };

	assert_int_equal(tls_fingerprint_parse(in, out, &err), -EINVAL);
	assert_string_equal(out, "untouched");
	assert_string_equal(err.code, "invalid_field");
	assert_string_equal(err.field, "fingerprint");
	assert_non_null(strstr(err.message, "SHA-256"));
}

static void
test_parse_refuses(void **state)
{
	(void)state;
	assert_refused(NULL);
	assert_refused("");
	assert_refused("   ");
	/* one digit short, one too many */
	assert_refused("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85");
	assert_refused("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555");
	/* not hex */
	assert_refused("g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	/* separators that are not ':' or not between every pair */
	assert_refused("E3-B0-C4-42-98-FC-1C-14-9A-FB-F4-C8-99-6F-B9-24-"
		       "27-AE-41-E4-64-9B-93-4C-A4-95-99-1B-78-52-B8-55");
	assert_refused("E3B:0C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:"
		       "27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55");
	/* a SHA-1 fingerprint */
	assert_refused("DA:39:A3:EE:5E:6B:4B:0D:32:55:BF:EF:95:60:18:90:AF:D8:07:09");
	/* an embedded NUL ends the string: what is left is too short */
	assert_refused("E3:B0\0:C4");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_parse_accepts),
		cmocka_unit_test(test_parse_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
