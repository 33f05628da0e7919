#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "agent/mounts/mountinfo.h"

static const char sample[] =
	"22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"
	"97 22 0:52 / /var/lib/nqrust/smb/127.0.0.1:guest rw,nosuid,nodev,relatime shared:50 - fuse.nqrust-smbfs //127.0.0.1/guest rw,user_id=0,group_id=0\n"
	"98 22 0:53 / /var/lib/nqrust/smb/srv:my\\040share rw master:3 shared:9 - cifs //srv/my\\040share rw,vers=3.1.1\n"
	"garbage line without separator\n"
	"99 22 0:54 / /mnt/x rw - tmpfs tmpfs rw\n"
	"100 22 0:55 / /mnt/x rw - cifs //a/b rw"; /* no trailing newline */

static void
test_parse(void **state)
{
	struct mountinfo_entry *e = NULL;
	size_t n = 0;
	(void)state;

	assert_int_equal(mountinfo_parse(sample, &e, &n), 0);
	assert_int_equal(n, 5);
	assert_string_equal(e[1].mount_point, "/var/lib/nqrust/smb/127.0.0.1:guest");
	assert_string_equal(e[1].fstype, "fuse.nqrust-smbfs");
	assert_string_equal(e[1].source, "//127.0.0.1/guest");
	assert_true(mountinfo_is_smb(&e[1]));
	/* Several optional fields, and octal escapes decoded. */
	assert_string_equal(e[2].mount_point, "/var/lib/nqrust/smb/srv:my share");
	assert_string_equal(e[2].source, "//srv/my share");
	assert_true(mountinfo_is_smb(&e[2]));
	assert_false(mountinfo_is_smb(&e[0]));
	/* The top-most mount at a path wins. */
	const struct mountinfo_entry *x = mountinfo_find(e, n, "/mnt/x");
	assert_non_null(x);
	assert_string_equal(x->fstype, "cifs");
	assert_null(mountinfo_find(e, n, "/mnt"));
	mountinfo_free(e, n);
}

static void
test_truncated_escape(void **state)
{
	struct mountinfo_entry *e = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(mountinfo_parse("1 1 0:1 / /a\\04 rw - tmpfs t rw\n", &e, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(e[0].mount_point, "/a\\04");
	mountinfo_free(e, n);
}

static void
test_read_self(void **state)
{
	struct mountinfo_entry *e = NULL;
	size_t n = 0;
	(void)state;
	assert_int_equal(mountinfo_read(&e, &n), 0);
	assert_non_null(mountinfo_find(e, n, "/"));
	mountinfo_free(e, n);
	/* "/" is mounted, but not by one of our SMB drivers. */
	assert_int_equal(mountinfo_has_smb("/", NULL), 0);
	assert_int_equal(mountinfo_has_smb("/no/such/mount", NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_truncated_escape),
		cmocka_unit_test(test_read_self),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
