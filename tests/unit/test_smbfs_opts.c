/* nqrust-smbfs option parsing (src/smbfs/opts.c): every flag and numeric
 * option sets its own field, ranges are enforced at both ends, and the
 * messages name the option, never its value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "smbfs/opts.h"

/* Parse `//srv/share /tmp -o OPTS` into *o; the return of smbfs_opts_parse. */
static int
parse(struct smbfs_opts *o, const char *opts)
{
	char *argv[] = { "nqrust-smbfs", "//srv/share", "/tmp", "-o", (char *)opts, NULL };

	return smbfs_opts_parse(5, argv, o);
}

/* opts must fail with exactly `msg`. */
static void
expect_error(const char *opts, const char *msg)
{
	struct smbfs_opts o;

	assert_int_equal(parse(&o, opts), -EINVAL);
	assert_string_equal(o.error, msg);
	smbfs_opts_release(&o);
}

static void
test_defaults(void **state)
{
	struct smbfs_opts o;
	(void)state;

	assert_int_equal(parse(&o, "guest"), 0);
	assert_true(o.guest);
	assert_false(o.hard);
	assert_false(o.nostrictsync);
	assert_false(o.view.ro);
	assert_false(o.nodev || o.nosuid || o.noexec);
	assert_int_equal(o.port, 445);
	assert_int_equal(o.grace_s, SMBFS_DEFAULT_GRACE_S);
	assert_int_equal(o.replay_mib, SMBFS_DEFAULT_REPLAY_MIB);
	assert_int_equal(o.conns, SMBFS_DEFAULT_CONNS);
	assert_int_equal(o.view.file_mode, 0755);
	assert_int_equal(o.view.dir_mode, 0755);
	assert_int_equal(o.view.cache, SMBFS_CACHE_STRICT);
	assert_true(o.actimeo == 1.0);
	assert_int_equal(o.io_deadline_s, 0); /* off: today's behaviour */
	assert_string_equal(o.unc, "//srv/share");
	smbfs_opts_release(&o);
}

static void
test_flags(void **state)
{
	struct smbfs_opts o;
	(void)state;

	assert_int_equal(parse(&o, "guest,ro,nodev,nosuid,noexec,hard,nostrictsync,"
				   "nobrl,noperm,rw,,"),
		0);
	assert_true(o.guest && o.view.ro && o.nodev && o.nosuid && o.noexec);
	assert_true(o.hard);
	assert_true(o.nostrictsync);
	smbfs_opts_release(&o);

	/* The last of a pair wins. */
	assert_int_equal(parse(&o, "guest,hard,soft,nostrictsync,strictsync"), 0);
	assert_false(o.hard);
	assert_false(o.nostrictsync);
	smbfs_opts_release(&o);
	assert_int_equal(parse(&o, "guest,soft,hard"), 0);
	assert_true(o.hard);
	smbfs_opts_release(&o);
}

static void
test_numbers(void **state)
{
	struct smbfs_opts o;
	(void)state;

	assert_int_equal(parse(&o, "guest,port=1445,uid=1000,gid=4294967294,"
				   "file_mode=0640,dir_mode=700,timeout=3600,"
				   "replay_mib=0,mount_timeout=1,actimeo=86400,conns=1"),
		0);
	assert_int_equal(o.conns, 1);
	assert_int_equal(o.port, 1445);
	assert_int_equal(o.view.uid, 1000);
	assert_int_equal(o.view.gid, 4294967294U);
	assert_int_equal(o.view.file_mode, 0640);
	assert_int_equal(o.view.dir_mode, 0700);
	assert_int_equal(o.grace_s, 3600);
	assert_int_equal(o.replay_mib, 0);
	assert_int_equal(o.mount_timeout_s, 1);
	assert_true(o.actimeo == 86400.0);
	smbfs_opts_release(&o);

	assert_int_equal(parse(&o, "guest,port=65535,replay_mib=4096,actimeo=0,conns=16"),
		0);
	assert_int_equal(o.port, 65535);
	assert_int_equal(o.conns, 16);
	assert_int_equal(o.replay_mib, 4096);
	assert_true(o.actimeo == 0.0);
	smbfs_opts_release(&o);
}

static void
test_number_errors(void **state)
{
	(void)state;
	expect_error("guest,port=0", "port= must be 1..65535");
	expect_error("guest,port=65536", "port= must be 1..65535");
	expect_error("guest,port=-1", "port= must be 1..65535");
	expect_error("guest,uid=4294967295", "uid= must be a number");
	expect_error("guest,gid=x", "gid= must be a number");
	expect_error("guest,file_mode=8", "file_mode= must be an octal mode");
	expect_error("guest,dir_mode=10000", "dir_mode= must be an octal mode");
	expect_error("guest,timeout=0", "timeout= must be 1..3600 seconds");
	expect_error("guest,timeout=3601", "timeout= must be 1..3600 seconds");
	expect_error("guest,replay_mib=4097", "replay_mib= must be 0..4096");
	expect_error("guest,mount_timeout=0", "mount_timeout= must be 1..3600 seconds");
	expect_error("guest,actimeo=86401", "actimeo= must be 0..86400 seconds");
	expect_error("guest,port=", "port= must be 1..65535");
	expect_error("guest,conns=0", "conns= must be 1..16");
	expect_error("guest,conns=17", "conns= must be 1..16");
	expect_error("guest,io_deadline=3601",
		"io_deadline= must be 0..3600 seconds (0 = off)");
	expect_error("guest,io_deadline=-1",
		"io_deadline= must be 0..3600 seconds (0 = off)");
	expect_error("guest,io_deadline=1s",
		"io_deadline= must be 0..3600 seconds (0 = off)");
	expect_error("guest,io_deadline=",
		"io_deadline= must be 0..3600 seconds (0 = off)");
}

/* io_deadline= is its own field, on hard mounts too, and does not change
 * the grace or the wire timeout. */
static void
test_io_deadline(void **state)
{
	struct smbfs_opts o;
	(void)state;

	assert_int_equal(parse(&o, "guest,hard,io_deadline=5,timeout=90"), 0);
	assert_int_equal(o.io_deadline_s, 5);
	assert_true(o.hard);
	assert_int_equal(o.grace_s, 90);
	assert_int_equal(o.timeout_s, SMBFS_WIRE_TIMEOUT_S);
	smbfs_opts_release(&o);
	assert_int_equal(parse(&o, "guest,io_deadline=3600,io_deadline=0"), 0);
	assert_int_equal(o.io_deadline_s, 0);
	smbfs_opts_release(&o);
	assert_int_equal(parse(&o, "guest,io_deadline=3600"), 0);
	assert_int_equal(o.io_deadline_s, 3600);
	smbfs_opts_release(&o);
}

static void
test_strings(void **state)
{
	struct smbfs_opts o;
	(void)state;

	assert_int_equal(parse(&o, "cred=/c,vers=3.11,workgroup=W,cache=loose,fsname=x"),
		0);
	assert_string_equal(o.cred_path, "/c");
	assert_string_equal(o.proto_min, "SMB3_11");
	assert_string_equal(o.domain, "W");
	assert_true(o.domain_from_opt);
	assert_int_equal(o.view.cache, SMBFS_CACHE_LOOSE);
	smbfs_opts_release(&o);
	expect_error("guest,cache=fast", "cache= must be none, strict or loose");
	expect_error("guest,dom=a/b", "invalid domain=");
	expect_error("credentials=/a,cred=/b", "credentials= needs one file name");
}

static void
test_unknown(void **state)
{
	(void)state;
	/* A flag with a value, a valued option without one, and a value that
	 * might be a secret: named, never echoed. */
	expect_error("guest,hard=1", "unknown option 'hard'");
	expect_error("guest,port", "unknown or malformed option 'port'");
	expect_error("guest,password=hunter2", "unknown option 'password'");
	expect_error("guest,bogus", "unknown or malformed option 'bogus'");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_number_errors),
		cmocka_unit_test(test_io_deadline),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_unknown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
