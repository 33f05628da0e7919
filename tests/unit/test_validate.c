/* Accept/reject tables for the allow-list validators. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/validate.h"

static void
expect_invalid(int r, const struct nq_error *err, const char *field)
{
	assert_int_equal(r, -EINVAL);
	assert_string_equal(err->code, "invalid_field");
	assert_string_equal(err->field, field);
	assert_true(strlen(err->message) > 10);
	/* A sentence that names the field, on one line. */
	assert_non_null(strstr(err->message, field));
	assert_null(strchr(err->message, '\n'));
}

static void
test_server_accept(void **state)
{
	static const char *const cases[][2] = {
		{ "fileserver", "fileserver" },
		{ "FileServer.Example.COM", "fileserver.example.com" },
		{ "nas-01.lan", "nas-01.lan" },
		{ "a", "a" },
		{ "x1.example", "x1.example" },
		{ "127.0.0.1", "127.0.0.1" },
		{ "192.168.10.254", "192.168.10.254" },
		{ "[::1]", "[::1]" },
		{ "[0:0::1]", "[::1]" },
		{ "[0000:0000:0000:0000:0000:0000:0000:0001]", "[::1]" },
		{ "[FE80::ABCD]", "[fe80::abcd]" },
		{ "[2001:db8::1:0:0:1]", "[2001:db8::1:0:0:1]" },
		{ "[::ffff:10.0.0.1]", "[::ffff:10.0.0.1]" },
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char out[NQ_SERVER_MAX + 1] = "untouched";
		struct nq_error err = { 0 };

		if (validate_server("server", cases[i][0], out, sizeof out, &err) != 0)
			fail_msg("refused %s: %s", cases[i][0], err.message);
		assert_string_equal(out, cases[i][1]);
		assert_false(nq_error_is_set(&err));
	}
	assert_false(server_is_ipv6("127.0.0.1"));
	assert_true(server_is_ipv6("[::1]"));
}

static void
test_server_reject(void **state)
{
	static const char *const cases[] = {
		"",
		"a;b",
		"$(x)",
		"`id`",
		"a b",
		" host",
		"host ",
		"-oflag",
		"-host.example",
		"host-.example",
		"a..b",
		".host",
		"host.",
		"a_b",
		"a/b",
		"a\\b",
		"host\n",
		"a,b",
		"a=b",
		"user@host",
		"::1",
		"[::1",
		"::1]",
		"[]",
		"[::1]:445",
		"[fe80::1%eth0]",
		"[1.2.3.4]",
		"[::g]",
		"[:::1]",
		"1.2.3",
		"1.2.3.4.5",
		"256.1.1.1",
		"01.2.3.4",
		"1.2.3.04",
		"0x7f.1",
		"0x7f000001",
		"2130706433",
		"host.123",
		"\xc3\xa9t\xc3\xa9",
		"a\x7f",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.com",
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char out[NQ_SERVER_MAX + 1] = "untouched";
		struct nq_error err = { 0 };
		int r = validate_server("server", cases[i], out, sizeof out, &err);

		if (r != -EINVAL)
			fail_msg("accepted \"%s\" as %s", cases[i], out);
		expect_invalid(r, &err, "server");
		assert_string_equal(out, "untouched");
	}
}

static void
test_server_limits(void **state)
{
	char big[400], out[NQ_SERVER_MAX + 1], small[4];
	struct nq_error err = { 0 };

	(void)state;
	/* 4 labels of 63 = 255 chars: over the 253 name limit. */
	memset(big, 'a', sizeof big);
	for (int i = 63; i < 255; i += 64)
		big[i] = '.';
	big[255] = '\0';
	expect_invalid(validate_server("srv", big, out, sizeof out, &err), &err, "srv");
	big[251] = '\0'; /* 252 chars, labels of 63 */
	assert_int_equal(validate_server("srv", big, out, sizeof out, &err), 0);
	big[sizeof big - 1] = '\0';
	memset(big, 'a', sizeof big - 1);
	expect_invalid(validate_server("srv", big, out, sizeof out, &err), &err, "srv");
	assert_int_equal(validate_server("srv", NULL, out, sizeof out, &err), -EINVAL);
	/* Output buffer too small is an error, not a truncation. */
	assert_int_equal(validate_server("srv", "host", small, sizeof small, &err),
		-EINVAL);
}

static void
test_share(void **state)
{
	static const char *const good[] = { "vmstore", "VM Store", "data$", "a",
		"share-01_x.y", "caf\xc3\xa9", "#1 (new)" };
	static const char *const bad[] = {
		"", ".", "..", "a/b", "a\\b", "a:b", "a*", "a?", "a\"b", "a<b", "a>b",
		"a|b", "a,b", "a=b", "a;b", "[a]", "a+b", " lead", "trail ", "a\nb",
		"a\tb", "a\x7f", "\xc3\x28", "\xc0\xaf", "\xed\xa0\x80", "\xc2\x85",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	};
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		struct nq_error err = { 0 };

		if (validate_share("share", good[i], &err) != 0)
			fail_msg("refused %s: %s", good[i], err.message);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct nq_error err = { 0 };
		int r = validate_share("share", bad[i], &err);

		if (r == 0)
			fail_msg("accepted share #%zu", i);
		expect_invalid(r, &err, "share");
	}
	assert_int_equal(validate_share("share", NULL, NULL), -EINVAL);
}

static void
test_subdir(void **state)
{
	static const char *const good[][2] = { { "", "" }, { "vms", "vms" },
		{ "a/b/c", "a/b/c" }, { "a/b/", "a/b" }, { "my vms/x", "my vms/x" },
		{ "..a/b..", "..a/b.." }, { ".hidden", ".hidden" } };
	static const char *const bad[] = { "..", "../x", "a/../b", "a/..", "/abs", "/",
		"a//b", "./a", "a/./b", ".", "a\\b", "a\nb", "a\rb", "c:/x", "a/b//", "a*",
		" a", "a /b" };
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		char out[NQ_SUBDIR_MAX + 1] = "untouched";
		struct nq_error err = { 0 };

		if (validate_subdir("subdir", good[i][0], out, sizeof out, &err) != 0)
			fail_msg("refused %s: %s", good[i][0], err.message);
		assert_string_equal(out, good[i][1]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char out[NQ_SUBDIR_MAX + 1] = "untouched";
		struct nq_error err = { 0 };
		int r = validate_subdir("subdir", bad[i], out, sizeof out, &err);

		if (r == 0)
			fail_msg("accepted subdir \"%s\" as \"%s\"", bad[i], out);
		expect_invalid(r, &err, "subdir");
		assert_string_equal(out, "untouched");
	}
}

static void
test_version(void **state)
{
	static const char *const good[] = { "default", "2.0", "2.1", "3", "3.0", "3.11",
		"" };
	static const char *const bad[] = { "1.0", "1", "3.1.1", "3.02", "2", "4",
		"DEFAULT", " 3.0", "3.0 ", "3.0,sec=none", "smb3" };
	struct nq_error err = { 0 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_int_equal(validate_smb_version("smb_version", good[i], &err), 0);
	assert_int_equal(validate_smb_version("smb_version", NULL, &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&err, 0, sizeof err);
		expect_invalid(validate_smb_version("smb_version", bad[i], &err), &err,
			"smb_version");
	}
	validate_smb_version("smb_version", "1.0", &err);
	assert_non_null(strstr(err.message, "SMB1"));
}

static void
test_backend_id(void **state)
{
	char out[NQ_UUID_LEN + 1] = "untouched";
	struct nq_error err = { 0 };
	static const char *const bad[] = { "", "-x", "Localfile", "a/b", "..", ".hidden",
		"a b", "a_b", "localfile-default\n",
		"abcdefghijklmnopqrstuvwxyz0123456789x", "../etc" };

	(void)state;
	assert_int_equal(validate_backend_id("backend_id", "localfile-default", out, &err),
		0);
	assert_string_equal(out, "localfile-default");
	assert_int_equal(validate_backend_id("backend_id",
				 "123E4567-E89B-12D3-A456-426614174000", out, &err),
		0);
	assert_string_equal(out, "123e4567-e89b-12d3-a456-426614174000");
	assert_int_equal(validate_backend_id("backend_id",
				 "abcdefghijklmnopqrstuvwxyz0123456789", out, &err),
		0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char o[NQ_UUID_LEN + 1] = "untouched";

		expect_invalid(validate_backend_id("backend_id", bad[i], o, &err), &err,
			"backend_id");
		assert_string_equal(o, "untouched");
	}
}

static void
test_uuid(void **state)
{
	char out[NQ_UUID_LEN + 1] = "untouched";
	struct nq_error err = { 0 };
	static const char *const bad[] = { "", "123e4567-e89b-12d3-a456-42661417400",
		"123e4567-e89b-12d3-a456-4266141740000",
		"123e4567e89b-12d3-a456-4266141740000",
		"123e4567-e89b-12d3-a456_426614174000",
		"g23e4567-e89b-12d3-a456-426614174000",
		"../../../../../../../../../../etc/pw",
		"123e4567-e89b-12d3-a456-42661417400\n" };

	(void)state;
	assert_int_equal(
		validate_uuid("id", "123E4567-E89B-12D3-A456-426614174000", out, &err), 0);
	assert_string_equal(out, "123e4567-e89b-12d3-a456-426614174000");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char o[NQ_UUID_LEN + 1] = "untouched";

		expect_invalid(validate_uuid("id", bad[i], o, &err), &err, "id");
		assert_string_equal(o, "untouched");
	}
}

static void
test_names(void **state)
{
	static const char *const good[] = { "a", "Backend 1", "nas_store.v2-x", "0abc" };
	static const char *const bad[] = { "", " a", "-a", ".a", "_a", "a/b", "a\nb",
		"a;b", "a$", "\xc3\xa9",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
	static const char *const img_good[] = { "debian-12.raw", "a", "A_b.img", "-x" };
	static const char *const img_bad[] = { "", ".hidden", "..", "a/b", "a b", "../x",
		"a\\b", "x\n" };
	struct nq_error err = { 0 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_int_equal(validate_name("name", good[i], &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		expect_invalid(validate_name("name", bad[i], &err), &err, "name");
	for (size_t i = 0; i < ARRAY_SIZE(img_good); i++)
		assert_int_equal(validate_image_name("image", img_good[i], &err), 0);
	for (size_t i = 0; i < ARRAY_SIZE(img_bad); i++)
		expect_invalid(validate_image_name("image", img_bad[i], &err), &err,
			"image");
}

static void
test_credentials_text(void **state)
{
	struct nq_error err = { 0 };
	char big[NQ_SECRET_MAX + 2];

	(void)state;
	assert_int_equal(validate_username("username", "alice", &err), 0);
	assert_int_equal(validate_username("username", "", &err), 0);
	assert_int_equal(validate_username("username", "DOM\\alice", &err), 0);
	expect_invalid(validate_username("username", "a,b", &err), &err, "username");
	expect_invalid(validate_username("username", "a=b", &err), &err, "username");
	expect_invalid(validate_username("username", " a", &err), &err, "username");
	expect_invalid(validate_username("username", "a\nb", &err), &err, "username");
	expect_invalid(validate_username("username", "a\rb", &err), &err, "username");
	assert_int_equal(validate_domain("domain", "CORP", &err), 0);
	expect_invalid(validate_domain("domain", "CO,RP", &err), &err, "domain");

	assert_int_equal(validate_password("password", "p,a=s s", 7, &err), 0);
	assert_int_equal(validate_password("password", "", 0, &err), 0);
	memset(&err, 0, sizeof err);
	expect_invalid(validate_password("password", "se\ncret", 7, &err), &err,
		"password");
	/* The message never quotes the password. */
	assert_null(strstr(err.message, "se"));
	expect_invalid(validate_password("password", "ab\0cd", 5, &err), &err, "password");
	memset(big, 'x', sizeof big);
	expect_invalid(validate_password("password", big, NQ_SECRET_MAX + 1, &err), &err,
		"password");
	assert_int_equal(validate_password("password", big, NQ_SECRET_MAX, &err), 0);
}

static void
check_opts_ok(const char *in, const char *joined, unsigned port)
{
	struct mount_opts o = { 0 };
	struct nq_error err = { 0 };
	char buf[NQ_OPTS_MAX + 1];

	if (validate_mount_options("mount_options", in, &o, &err) != 0)
		fail_msg("refused \"%s\": %s", in, err.message);
	assert_int_equal(mount_opts_join(&o, buf, sizeof buf), 0);
	assert_string_equal(buf, joined);
	assert_int_equal(o.port, port);
	mount_opts_release(&o);
	assert_int_equal(o.n, 0);
}

static void
test_mount_options_accept(void **state)
{
	(void)state;
	check_opts_ok("", "", 0);
	check_opts_ok(NULL, "", 0);
	check_opts_ok("port=445", "port=445", 445);
	check_opts_ok("port=1", "port=1", 1);
	check_opts_ok("port=65535,ro", "port=65535,ro", 65535);
	check_opts_ok("rsize=65536,wsize=1048576,actimeo=0,cache=none",
		"rsize=65536,wsize=1048576,actimeo=0,cache=none", 0);
	check_opts_ok("iocharset=utf8,noserverino,mfsymlinks,hard,seal",
		"iocharset=utf8,noserverino,mfsymlinks,hard,seal", 0);
	check_opts_ok("soft,timeout=5", "soft,timeout=5", 0);
	check_opts_ok("timeout=3600,hard", "timeout=3600,hard", 0);
	check_opts_ok("echo_interval=60,max_credits=128,acregmax=30,acdirmax=30",
		"echo_interval=60,max_credits=128,acregmax=30,acdirmax=30", 0);
	check_opts_ok("nounix,nosharesock,handlecache,noatime,resilienthandles,"
		      "persistenthandles,noperm,rw",
		"nounix,nosharesock,handlecache,noatime,resilienthandles,"
		"persistenthandles,noperm,rw",
		0);
}

static void
check_opts_bad(const char *in, const char *needle)
{
	struct mount_opts o = { .n = 0, .port = 7 };
	struct nq_error err = { 0 };
	int r = validate_mount_options("mount_options", in, &o, &err);

	if (r == 0)
		fail_msg("accepted \"%s\"", in);
	expect_invalid(r, &err, "mount_options");
	if (needle && !strstr(err.message, needle))
		fail_msg("\"%s\": message \"%s\" lacks \"%s\"", in, err.message, needle);
	/* ret untouched on failure */
	assert_int_equal(o.port, 7);
	assert_int_equal(o.n, 0);
}

static void
test_mount_options_reject(void **state)
{
	char many[NQ_OPTS_MAX + 64] = "";
	(void)state;
	check_opts_bad("credentials=/x", "managed by the backend");
	check_opts_bad("password=a", "managed by the backend");
	check_opts_bad("port=445,password=x", "managed by the backend");
	check_opts_bad("PASSWORD=x", "managed by the backend");
	check_opts_bad("username=root", "managed by the backend");
	check_opts_bad("user=root", "managed by the backend");
	check_opts_bad("uid=0", "managed by the backend");
	check_opts_bad("gid=0", "managed by the backend");
	check_opts_bad("vers=1.0", "managed by the backend");
	check_opts_bad("sec=none", "managed by the backend");
	check_opts_bad("guest", "managed by the backend");
	check_opts_bad("ip=10.0.0.1", "managed by the backend");
	check_opts_bad("unc=//evil/share", "managed by the backend");
	check_opts_bad("prefixpath=/x", "managed by the backend");
	check_opts_bad("setuids", "managed by the backend");
	check_opts_bad("suid", "managed by the backend");
	check_opts_bad("dev", "managed by the backend");
	check_opts_bad("exec", "managed by the backend");
	check_opts_bad("file_mode=0777", "managed by the backend");
	check_opts_bad("multiuser", "managed by the backend");
	check_opts_bad("nostrictsync", "managed by the backend");
	check_opts_bad("mount_timeout=5", "managed by the backend");
	check_opts_bad("timeout=0", NULL);
	check_opts_bad("timeout=3601", NULL);
	check_opts_bad("soft,hard", NULL);
	check_opts_bad("a=b,c", "unknown mount option");
	check_opts_bad("port=445,bogus", "unknown mount option");
	check_opts_bad("x-systemd.automount", "unknown mount option");
	check_opts_bad("port=445\ncredentials=/x", "control characters");
	check_opts_bad("ro\r", "control characters");
	check_opts_bad("ro, rw", "spaces");
	check_opts_bad("iocharset=\"utf8\"", "quotes");
	check_opts_bad("iocharset='utf8'", "quotes");
	check_opts_bad("iocharset=utf\\8", "backslash");
	check_opts_bad("ro,ro", "more than once");
	check_opts_bad("port=445,port=446", "more than once");
	check_opts_bad("ro,rw", "contradict");
	check_opts_bad("hard,soft", "contradict");
	check_opts_bad("ro,,rw", "empty");
	check_opts_bad(",ro", "empty");
	check_opts_bad("ro,", "empty");
	check_opts_bad(",", "empty");
	check_opts_bad("port=0", "port");
	check_opts_bad("port=65536", "port");
	check_opts_bad("port=-1", "port");
	check_opts_bad("port=+445", "port");
	check_opts_bad("port=0445", "leading zeros");
	check_opts_bad("port=0x1bd", "port");
	check_opts_bad("port=", "port");
	check_opts_bad("port", "port");
	check_opts_bad("port=99999999999999999999", "port");
	check_opts_bad("rsize=12abc", "rsize");
	check_opts_bad("cache=bogus", "cache");
	check_opts_bad("cache", "cache");
	check_opts_bad("iocharset=", "iocharset");
	check_opts_bad("iocharset=../x", "iocharset");
	check_opts_bad("ro=1", "takes no value");
	check_opts_bad("port=445=446", "'='");
	check_opts_bad("=ro", "unknown mount option");
	check_opts_bad("r\xc3\xa9", "ASCII");
	/* More items than allowed. */
	for (int i = 0; i < NQ_MAX_EXTRA_OPTS + 1; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "%s",
			i == 0 ? "ro" : ",ro");
	check_opts_bad(many, NULL);
	memset(many, 'r', sizeof many - 1);
	many[sizeof many - 1] = '\0';
	check_opts_bad(many, "longer");
}

static void
test_mount_options_max_items(void **state)
{
	static const char *const keys[] = { "port=1", "rsize=4096", "wsize=4096",
		"actimeo=1", "acregmax=1", "acdirmax=1", "echo_interval=1",
		"max_credits=20", "cache=loose", "iocharset=utf8", "ro", "hard", "noperm",
		"noserverino", "mfsymlinks", "nounix", "nosharesock", "seal",
		"nohandlecache", "noatime", "resilienthandles", "persistenthandles" };
	struct mount_opts o = { 0 };
	struct nq_error err = { 0 };
	char in[NQ_OPTS_MAX] = "", small[8];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		if (i)
			strncat(in, ",", sizeof in - strlen(in) - 1);
		strncat(in, keys[i], sizeof in - strlen(in) - 1);
	}
	assert_int_equal(validate_mount_options("o", in, &o, &err), 0);
	assert_int_equal(o.n, ARRAY_SIZE(keys));
	assert_int_equal(mount_opts_join(&o, small, sizeof small), -ENOSPC);
	mount_opts_release(&o);
	mount_opts_release(NULL);
}

static void
test_path_under(void **state)
{
	static const char *const good[][2] = {
		{ "/var/lib/nqrust", "/var/lib/nqrust" },
		{ "/var/lib/nqrust/smb", "/var/lib/nqrust" },
		{ "/var/lib/nqrust/smb/a b", "/var/lib/nqrust" },
		{ "/anything", "/" },
		{ "/", "/" },
	};
	static const char *const bad[][2] = {
		{ "/var/lib/nqrust2", "/var/lib/nqrust" },
		{ "/var/lib", "/var/lib/nqrust" },
		{ "/var/lib/nqrust/../etc", "/var/lib/nqrust" },
		{ "/var/lib/nqrust/./x", "/var/lib/nqrust" },
		{ "/var/lib/nqrust//x", "/var/lib/nqrust" },
		{ "/var/lib/nqrust/", "/var/lib/nqrust" },
		{ "var/lib/nqrust/x", "/var/lib/nqrust" },
		{ "/var/lib/nqrust/x\n", "/var/lib/nqrust" },
		{ "", "/var/lib/nqrust" },
		{ "/var/lib/nqrust/x", "/var/lib/nqrust/" },
		{ "/var/lib/nqrust/x", "var/lib" },
		{ "/x/..", "/" },
	};
	struct nq_error err = { 0 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		if (validate_path_under("mount_base", good[i][0], good[i][1], &err) != 0)
			fail_msg("refused %s under %s: %s", good[i][0], good[i][1],
				err.message);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		int r = validate_path_under("mount_base", bad[i][0], bad[i][1], &err);

		if (r == 0)
			fail_msg("accepted %s under %s", bad[i][0], bad[i][1]);
		expect_invalid(r, &err, "mount_base");
	}
}

static void
test_null_err_is_safe(void **state)
{
	struct mount_opts o = { 0 };
	char out[64];

	(void)state;
	assert_int_equal(validate_server("s", "a;b", out, sizeof out, NULL), -EINVAL);
	assert_int_equal(validate_mount_options("o", "password=x", &o, NULL), -EINVAL);
	assert_int_equal(validate_path_under("p", "x", "/", NULL), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_accept),
		cmocka_unit_test(test_server_reject),
		cmocka_unit_test(test_server_limits),
		cmocka_unit_test(test_share),
		cmocka_unit_test(test_subdir),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_backend_id),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_credentials_text),
		cmocka_unit_test(test_mount_options_accept),
		cmocka_unit_test(test_mount_options_reject),
		cmocka_unit_test(test_mount_options_max_items),
		cmocka_unit_test(test_path_under),
		cmocka_unit_test(test_null_err_is_safe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
