#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/smb/credstore.h"

static struct agent a;
static char dir[] = "/tmp/nq-cred-XXXXXX";
static const char *id = "0b8e2c6a-4f1d-4c55-9a3e-1234567890ab";

static int
setup(void **state)
{
	(void)state;
	if (!mkdtemp(dir))
		return -1;
	a.cfg.cred_dir = dir;
	a.cred_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return a.cred_dirfd < 0 ? -1 : 0;
}

static int
teardown(void **state)
{
	char p[256];
	(void)state;
	snprintf(p, sizeof p, "%s/%s.cred", dir, id);
	unlink(p);
	close(a.cred_dirfd);
	return rmdir(dir);
}

/* The file is there and readable as ours (not through a symlink). */
static bool
credstore_exists(struct agent *ag, const char *bid)
{
	struct secret *sec = NULL;
	int r = credstore_read(ag, bid, &sec);

	secret_free(sec);
	return r == 0;
}

static char *
slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
count_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	while ((de = readdir(d)))
		if (de->d_name[0] != '.' || strlen(de->d_name) > 2)
			n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

static void
test_put_replace_delete(void **state)
{
	const char pw[] = "p,a=s's\"w$ rd 1";
	char path[256];
	struct stat st;
	(void)state;

	umask(0);
	assert_int_equal(credstore_path(&a, id, path, sizeof path), 0);
	assert_false(credstore_exists(&a, id));
	assert_int_equal(credstore_put(&a, id, "alice", pw, strlen(pw), NULL), 0);
	assert_true(credstore_exists(&a, id));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_string_equal(slurp(path), "username=alice\npassword=p,a=s's\"w$ rd 1\n");

	assert_int_equal(credstore_put(&a, id, "bob", "x", 1, "CORP"), 0);
	assert_string_equal(slurp(path), "username=bob\npassword=x\ndomain=CORP\n");
	assert_int_equal(count_entries(), 1); /* no temp file left */

	assert_int_equal(credstore_delete(&a, id), 0);
	assert_false(credstore_exists(&a, id));
	assert_int_equal(credstore_delete(&a, id), 0); /* idempotent */
	umask(022);
}

static void
test_symlink_is_not_followed(void **state)
{
	char path[256];
	(void)state;
	snprintf(path, sizeof path, "%s/%s.cred", dir, id);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_false(credstore_exists(&a, id));
	/* Replacing renames over the link; /etc/passwd is never opened. */
	assert_int_equal(credstore_put(&a, id, "u", "p", 1, NULL), 0);
	struct stat st;
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(credstore_delete(&a, id), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_replace_delete),
		cmocka_unit_test(test_symlink_is_not_followed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
