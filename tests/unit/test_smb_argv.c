/* SMB driver argv (golden files, byte for byte), mount identity, and the
 * classification of mount helper failures. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/smb/driver.h"

#define CRED "/run/nqrust/creds/backend-1.cred"
#define MOUNT_CIFS "/sbin/mount.cifs"
#define SMBFS "/usr/lib/nqrust/nqrust-smbfs"

/* Build a spec the way the agent does: through the validators. */
static void
make_spec(struct smb_mount_spec *s, const char *server, const char *share,
	const char *user, const char *domain, const char *vers, const char *opts)
{
	struct nq_error err = { 0 };

	memset(s, 0, sizeof *s);
	if (validate_server("server", server, s->server, sizeof s->server, &err) < 0 ||
		validate_share("share", share, &err) < 0 ||
		validate_username("username", user, &err) < 0 ||
		validate_domain("domain", domain, &err) < 0 ||
		validate_smb_version("smb_version", vers, &err) < 0 ||
		validate_mount_options("mount_options", opts, &s->opts, &err) < 0)
		fail_msg("bad test spec: %s", err.message);
	snprintf(s->share, sizeof s->share, "%s", share);
	snprintf(s->username, sizeof s->username, "%s", user);
	snprintf(s->domain, sizeof s->domain, "%s", domain);
	snprintf(s->version, sizeof s->version, "%s", vers);
}

static char *
read_golden(const char *name)
{
	char path[512];
	FILE *f;
	char *buf;
	size_t n;

	snprintf(path, sizeof path, "%s/%s.argv", GOLDEN_DIR, name);
	f = fopen(path, "re");
	if (!f)
		fail_msg("missing golden file %s", path);
	buf = calloc(1, 65536);
	assert_non_null(buf);
	n = fread(buf, 1, 65535, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static void
assert_golden(char **argv, const char *name)
{
	char *want = read_golden(name), got[65536];
	size_t len = 0;

	got[0] = '\0';
	for (char **p = argv; *p; p++) {
		/* One argument per line only works if none has a newline. */
		assert_null(strchr(*p, '\n'));
		len += (size_t)snprintf(got + len, sizeof got - len, "%s\n", *p);
		assert_true(len < sizeof got);
	}
	if (strcmp(got, want) != 0)
		fail_msg("argv differs from %s.argv:\n--- got\n%s--- want\n%s", name, got,
			want);
	free(want);
	smb_argv_free(argv);
}

static void
test_kernel_golden(void **state)
{
	struct smb_mount_spec s;
	char **argv = NULL;

	(void)state;
	make_spec(&s, "fileserver", "vmstore", "", "", "default", "");
	assert_int_equal(
		smb_kernel_argv(&s, MOUNT_CIFS, CRED, "/var/lib/nqrust/smb/m1", &argv), 0);
	assert_golden(argv, "kernel_guest");
	smb_mount_spec_release(&s);

	make_spec(&s, "192.168.1.10", "vms", "alice", "", "", NULL);
	assert_int_equal(
		smb_kernel_argv(&s, MOUNT_CIFS, CRED, "/var/lib/nqrust/smb/m2", &argv), 0);
	assert_golden(argv, "kernel_password");
	smb_mount_spec_release(&s);

	make_spec(&s, "NAS.corp.example", "vms", "alice", "CORP", "default", "");
	assert_int_equal(
		smb_kernel_argv(&s, MOUNT_CIFS, CRED, "/var/lib/nqrust/smb/m3", &argv), 0);
	assert_golden(argv, "kernel_domain");
	smb_mount_spec_release(&s);

	make_spec(&s, "nas.corp.example", "vms", "alice", "", "3", "");
	assert_int_equal(
		smb_kernel_argv(&s, MOUNT_CIFS, CRED, "/var/lib/nqrust/smb/m4", &argv), 0);
	assert_golden(argv, "kernel_version");
	smb_mount_spec_release(&s);

	make_spec(&s, "[0:0::1]", "vmstore", "", "", "default", "");
	assert_int_equal(
		smb_kernel_argv(&s, MOUNT_CIFS, CRED, "/var/lib/nqrust/smb/m5", &argv), 0);
	assert_golden(argv, "kernel_ipv6");
	smb_mount_spec_release(&s);

	make_spec(&s, "fileserver", "vmstore", "alice", "", "3.0",
		"port=4450,rsize=65536,hard,cache=none");
	assert_int_equal(
		smb_kernel_argv(&s, MOUNT_CIFS, CRED, "/var/lib/nqrust/smb/m6", &argv), 0);
	assert_golden(argv, "kernel_extra_opts");
	smb_mount_spec_release(&s);
}

static void
test_fuse_golden(void **state)
{
	struct smb_mount_spec s;
	char **argv = NULL;

	(void)state;
	/* rsize is kernel-only tuning: dropped for the FUSE driver. */
	make_spec(&s, "fileserver", "vmstore", "", "", "default", "rsize=65536,ro");
	assert_int_equal(
		smb_fuse_argv(&s, SMBFS, CRED, "/var/lib/nqrust/smb/m7", 30, 0, &argv), 0);
	assert_golden(argv, "fuse_guest");
	smb_mount_spec_release(&s);

	make_spec(&s, "127.0.0.1", "private", "alice", "CORP", "3.11",
		"port=4450,mfsymlinks,actimeo=1");
	assert_int_equal(
		smb_fuse_argv(&s, SMBFS, CRED, "/var/lib/nqrust/smb/m8", 15, 0, &argv), 0);
	assert_golden(argv, "fuse_password_port");
	smb_mount_spec_release(&s);

	/* The operator's outage choice: hard waits forever; soft with its
	 * own grace. Each appears once, where the default would be. */
	make_spec(&s, "fileserver", "vmstore", "", "", "default", "hard,cache=none");
	assert_int_equal(
		smb_fuse_argv(&s, SMBFS, CRED, "/var/lib/nqrust/smb/m9", 30, 0, &argv), 0);
	assert_golden(argv, "fuse_hard");
	smb_mount_spec_release(&s);

	make_spec(&s, "fileserver", "vmstore", "", "", "default", "timeout=5,soft");
	assert_int_equal(
		smb_fuse_argv(&s, SMBFS, CRED, "/var/lib/nqrust/smb/m10", 30, 0, &argv), 0);
	assert_golden(argv, "fuse_soft_timeout");
	smb_mount_spec_release(&s);

	/* Leased VMs' backends: the agent bounds every change's life below
	 * its fencing margin (io_deadline=), on a hard mount too. */
	make_spec(&s, "fileserver", "vmstore", "", "", "default", "hard,port=4450");
	assert_int_equal(
		smb_fuse_argv(&s, SMBFS, CRED, "/var/lib/nqrust/smb/m11", 10, 5, &argv), 0);
	assert_golden(argv, "fuse_io_deadline");
	smb_mount_spec_release(&s);
}

/* The kernel driver keeps cifs' default strict sync (fsync reaches the
 * server) and gets no timeout= (not a cifs option). */
static void
test_kernel_soft_and_strict_sync(void **state)
{
	struct smb_mount_spec s;
	char **argv = NULL;

	(void)state;
	make_spec(&s, "fileserver", "vmstore", "", "", "default", "soft,timeout=5");
	assert_int_equal(
		smb_kernel_argv(&s, MOUNT_CIFS, CRED, "/var/lib/nqrust/smb/m11", &argv), 0);
	assert_null(strstr(argv[4], "strictsync"));
	assert_golden(argv, "kernel_soft");
	smb_mount_spec_release(&s);
}

static void
test_argv_refuses(void **state)
{
	struct smb_mount_spec s;
	char **argv = (char **)0x1;

	(void)state;
	make_spec(&s, "fileserver", "vmstore", "alice", "", "default", "");
	assert_int_equal(smb_kernel_argv(&s, "mount.cifs", CRED, "/mnt", &argv), -EINVAL);
	assert_int_equal(smb_kernel_argv(&s, MOUNT_CIFS, NULL, "/mnt", &argv), -EINVAL);
	assert_int_equal(smb_kernel_argv(&s, MOUNT_CIFS, "/x,password=y", "/mnt", &argv),
		-EINVAL);
	assert_int_equal(smb_kernel_argv(&s, MOUNT_CIFS, "rel.cred", "/mnt", &argv),
		-EINVAL);
	assert_int_equal(smb_kernel_argv(&s, MOUNT_CIFS, CRED, "-ofoo", &argv), -EINVAL);
	assert_int_equal(smb_fuse_argv(&s, SMBFS, CRED, "/mnt\n", 5, 0, &argv), -EINVAL);
	assert_ptr_equal(argv, (char **)0x1); /* untouched */
	smb_mount_spec_release(&s);
	smb_argv_free(NULL);
}

static void
test_unc_and_key(void **state)
{
	struct smb_mount_spec a, b, c;
	char ka[2048], kb[2048], small[8];

	(void)state;
	make_spec(&a, "[::1]", "vm store", "al|ice", "", "", "port=445,ro");
	assert_int_equal(smb_unc(&a, ka, sizeof ka), 0);
	assert_string_equal(ka, "//[::1]/vm store");
	assert_int_equal(smb_unc(&a, small, sizeof small), -ENOSPC);
	assert_int_equal(smb_spec_key(&a, ka, sizeof ka), 0);
	assert_string_equal(ka, "[::1]|vm store|al%7Cice||default|port=445,ro");
	assert_int_equal(smb_spec_key(&a, small, sizeof small), -ENOSPC);

	/* Deep copy: same key, independent memory. */
	assert_int_equal(smb_mount_spec_copy(&a, &b), 0);
	assert_int_equal(smb_spec_key(&b, kb, sizeof kb), 0);
	assert_string_equal(ka, kb);
	assert_ptr_not_equal(a.opts.items[0], b.opts.items[0]);
	assert_int_equal(b.opts.port, 445);
	smb_mount_spec_release(&b);

	/* "" and "default" are the same version; the '|' in a user name
	 * cannot make two different specs collide. */
	make_spec(&b, "[::1]", "vm store", "al|ice", "", "default", "port=445,ro");
	assert_int_equal(smb_spec_key(&b, kb, sizeof kb), 0);
	assert_string_equal(ka, kb);
	smb_mount_spec_release(&b);
	make_spec(&b, "[::1]", "vm store", "al", "ice", "default", "port=445,ro");
	make_spec(&c, "[::1]", "vm store", "al|", "ice", "default", "port=445,ro");
	assert_int_equal(smb_spec_key(&b, kb, sizeof kb), 0);
	assert_int_equal(smb_spec_key(&c, ka, sizeof ka), 0);
	assert_string_not_equal(ka, kb);
	smb_mount_spec_release(&b);
	smb_mount_spec_release(&c);
	make_spec(&b, "[::1]", "vm store", "al|ice", "", "3.0", "port=445,ro");
	assert_int_equal(smb_spec_key(&b, kb, sizeof kb), 0);
	assert_string_not_equal(kb, "[::1]|vm store|al%7Cice||default|port=445,ro");
	smb_mount_spec_release(&b);
	smb_mount_spec_release(&a);
	smb_mount_spec_release(NULL);
}

/* ---- classification ---- */

static int
classify(const char *user, const char *stderr_text, bool timed_out, struct nq_error *err)
{
	struct smb_mount_spec s;
	struct spawn_result r = { .exited = !timed_out,
		.exit_code = 32,
		.timed_out = timed_out,
		.signaled = timed_out,
		.term_signal = timed_out ? 9 : 0,
		.err = (char *)stderr_text,
		.out = (char *)"" };
	int n;

	make_spec(&s, "srv", "share", user, "", "default", "");
	memset(err, 0, sizeof *err);
	n = smb_classify_mount_error(&s, &r, err);
	smb_mount_spec_release(&s);
	/* Never the helper's text; always one line with the share named. */
	assert_null(strchr(err->message, '\n'));
	assert_int_equal(err->field[0], '\0');
	return n;
}

static void
expect_class(const char *stderr_text, bool timed_out, const char *code, int want_n)
{
	struct nq_error err;
	int n = classify("alice", stderr_text, timed_out, &err);

	if (strcmp(err.code, code) != 0 || n != want_n)
		fail_msg("\"%s\": got %s/%d, want %s/%d", stderr_text, err.code, n, code,
			want_n);
}

static void
test_classify_real_mount_cifs(void **state)
{
	/* What mount.cifs prints on this machine (TESTING.md). */
	static const char real
		[] = "mount error: cifs filesystem not supported by the system\n"
		     "mount error(19): No such device\n"
		     "Refer to the mount.cifs(8) manual page (e.g. man mount.cifs) and "
		     "kernel log messages (dmesg)\n";
	struct nq_error err;

	(void)state;
	assert_int_equal(classify("alice", real, false, &err), 19);
	assert_string_equal(err.code, "cifs_unavailable");
	assert_string_equal(err.message,
		"this host's kernel has no CIFS support (mount error 19); install/load "
		"the cifs module or use mount_driver=fuse");
	assert_int_equal(nq_error_http_status(err.code), 422);
}

static void
test_classify_codes(void **state)
{
	struct nq_error err;

	(void)state;
	expect_class("mount error(13): Permission denied\n", false, "smb_auth_failed", 13);
	expect_class("mount error(2): No such file or directory\n", false,
		"smb_share_not_found", 2);
	expect_class("mount error(6): No such device or address\n", false,
		"smb_share_not_found", 6);
	expect_class("mount error(111): Connection refused\n", false, "smb_unreachable",
		111);
	expect_class("mount error(113): No route to host\n", false, "smb_unreachable", 113);
	expect_class("mount error(110): Connection timed out\n", false, "smb_timeout", 110);
	expect_class("mount error(95): Operation not supported\nhint: vers\n", false,
		"smb_bad_option", 95);
	expect_class("mount error(22): Invalid argument\n", false, "smb_bad_option", 22);
	expect_class("mount error(126): Required key not available\n", false,
		"smb_cred_missing", 126);
	expect_class("mount error(30): Read-only file system\n", false, "smb_not_writable",
		30);
	expect_class("mount error(5): Input/output error\n", false, "smb_mount_failed", 5);
	/* The helper was killed at the deadline: nothing printed. */
	expect_class("", true, "smb_timeout", 0);
	expect_class("mount error(13): Permission denied\n", true, "smb_timeout", 13);
	/* Real mount.cifs resolver and credentials-file messages (no number). */
	expect_class("mount error: could not resolve address for nonexistent.invalid:"
		     " Unknown error\n",
		false, "smb_unreachable", 0);
	expect_class("error 2 (No such file or directory) opening credential file "
		     "/run/nqrust/creds/x.cred\n",
		false, "smb_cred_missing", 0);
	expect_class("", false, "smb_mount_failed", 0);
	expect_class(NULL, false, "smb_mount_failed", 0);

	/* The message is actionable and names the share; guests get advice
	 * about credentials instead of "re-save the password". */
	classify("alice", "mount error(13): Permission denied", false, &err);
	assert_string_equal(err.message,
		"the SMB server //srv/share rejected the username or password (error 13); "
		"check the credentials and re-save the password");
	classify("", "mount error(13): Permission denied", false, &err);
	assert_non_null(strstr(err.message, "guest"));
	classify("alice", "mount error(126): x", false, &err);
	assert_string_equal(err.message,
		"the credentials file for this backend is missing; re-save the backend's password");
}

static void
test_classify_parsing(void **state)
{
	struct nq_error err;
	char big[SPAWN_CAPTURE_MAX + 64];

	(void)state;
	/* The last well-formed occurrence wins. */
	expect_class("mount error(2): x\nretrying\nmount error(13): y\n", false,
		"smb_auth_failed", 13);
	expect_class("mount error(13): y\nmount error(abc)\nmount error(): z\n", false,
		"smb_auth_failed", 13);
	/* Malformed or out-of-range numbers are ignored. */
	expect_class("mount error(-13): y\n", false, "smb_mount_failed", 0);
	expect_class("mount error(+13): y\n", false, "smb_mount_failed", 0);
	expect_class("mount error( 13): y\n", false, "smb_mount_failed", 0);
	expect_class("mount error(99999999999999999999): y\n", false, "smb_mount_failed",
		0);
	expect_class("mount error(13", false, "smb_mount_failed", 0);
	expect_class("mount error(0): y\n", false, "smb_mount_failed", 0);
	expect_class("mount error(", false, "smb_mount_failed", 0);
	/* Arbitrary helper text is never echoed. */
	classify("alice", "mount error(5): <script>evil</script>\n", false, &err);
	assert_null(strstr(err.message, "evil"));
	assert_non_null(strstr(err.message, "Input/output error"));
	/* A huge stderr with the code at the end of the capture. */
	memset(big, 'x', sizeof big);
	memcpy(big + SPAWN_CAPTURE_MAX - 40, "mount error(111): refused", 25);
	big[SPAWN_CAPTURE_MAX - 15] = '\0';
	expect_class(big, false, "smb_unreachable", 111);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kernel_golden),
		cmocka_unit_test(test_fuse_golden),
		cmocka_unit_test(test_kernel_soft_and_strict_sync),
		cmocka_unit_test(test_argv_refuses),
		cmocka_unit_test(test_unc_and_key),
		cmocka_unit_test(test_classify_real_mount_cifs),
		cmocka_unit_test(test_classify_codes),
		cmocka_unit_test(test_classify_parsing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
