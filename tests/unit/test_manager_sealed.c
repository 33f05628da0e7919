/* Unit tests: src/manager/auth/sealed.c (AES-256-GCM sealed secrets and
 * the key file). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager/auth/sealed.h"

static char dir[] = "/tmp/nqrust-sealed-XXXXXX";

static void
key_at(const char *name, struct sealed_key *k)
{
	char path[256];

	snprintf(path, sizeof path, "%s/%s", dir, name);
	assert_int_equal(sealed_key_load(path, k), 0);
}

static void
test_key_created_0600_and_reused(void **state)
{
	struct sealed_key a, b;
	char path[256];
	struct stat st;
	(void)state;

	key_at("k1", &a);
	snprintf(path, sizeof path, "%s/k1", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(st.st_size, SEALED_KEY_LEN);
	key_at("k1", &b);
	assert_memory_equal(a.k, b.k, SEALED_KEY_LEN);
	key_at("k2", &b);
	assert_memory_not_equal(a.k, b.k, SEALED_KEY_LEN);
	/* Readable by others, or not 32 bytes: refused. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(sealed_key_load(path, &b), -EINVAL);
	snprintf(path, sizeof path, "%s/short", dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "abc", 3), 3);
	close(fd);
	assert_int_equal(sealed_key_load(path, &b), -EINVAL);
}

static void
test_round_trip(void **state)
{
	const char *pw = "p@ss word;with=odd\"chars";
	struct sealed_key k;
	struct secret *s = NULL;
	char *sealed = NULL, *again = NULL;
	(void)state;

	key_at("rt", &k);
	assert_int_equal(sealed_seal(&k, "backend:x", pw, strlen(pw), &sealed), 0);
	assert_null(strstr(sealed, pw));
	assert_int_equal(sealed_open(&k, "backend:x", sealed, &s), 0);
	assert_int_equal(s->len, strlen(pw));
	assert_string_equal(s->buf, pw);
	secret_free(s);
	/* A fresh nonce each time. */
	assert_int_equal(sealed_seal(&k, "backend:x", pw, strlen(pw), &again), 0);
	assert_string_not_equal(sealed, again);
	free(sealed);
	free(again);
	/* The empty value too. */
	assert_int_equal(sealed_seal(&k, "host:h", "", 0, &sealed), 0);
	assert_int_equal(sealed_open(&k, "host:h", sealed, &s), 0);
	assert_int_equal(s->len, 0);
	secret_free(s);
	free(sealed);
}

static void
test_wrong_key_aad_tampered(void **state)
{
	struct sealed_key k, other;
	struct secret *s = NULL;
	char *sealed = NULL;
	(void)state;

	key_at("w1", &k);
	key_at("w2", &other);
	assert_int_equal(sealed_seal(&k, "host:a", "token-123456789012", 18, &sealed), 0);
	assert_int_equal(sealed_open(&other, "host:a", sealed, &s), -EBADMSG);
	assert_int_equal(sealed_open(&k, "host:b", sealed, &s), -EBADMSG);
	/* One character of the ciphertext changed. */
	size_t mid = strlen(sealed) / 2;
	sealed[mid] = sealed[mid] == 'A' ? 'B' : 'A';
	assert_int_equal(sealed_open(&k, "host:a", sealed, &s), -EBADMSG);
	assert_int_equal(sealed_open(&k, "host:a", "", &s), -EBADMSG);
	assert_int_equal(sealed_open(&k, "host:a", "AAAA", &s), -EBADMSG);
	assert_int_equal(sealed_open(&k, "host:a", "not base64 at all!", &s), -EBADMSG);
	assert_null(s);
	free(sealed);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_created_0600_and_reused),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_wrong_key_aad_tampered),
	};
	int r;

	if (!mkdtemp(dir))
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "%s", dir);
	/* Leave no key behind. */
	const char *names[] = { "k1", "k2", "short", "rt", "w1", "w2" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		char p[300];
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		unlink(p);
	}
	rmdir(cmd);
	return r;
}
