/* Unit tests: src/common/record_store.c — save/remove one record (0600,
 * atomic) and load every <id>.json: bad names, bad ids, non-objects,
 * duplicate keys, oversized files, symlinks and temp files are skipped;
 * a callback's refusal skips; -ENOMEM ends the load; max_records stops it.
 * Each test works in its own temp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/record_store.h"

struct fixture {
	char dir[64];
	int fd;
};

struct seen {
	unsigned n;
	char ids[8][RECORD_ID_MAX + 1];
	int answer; /* what load returns */
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	snprintf(f->dir, sizeof f->dir, "/tmp/nq-record-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->fd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->fd >= 0);
	log_set_level(LOG_LVL_ERROR); /* the skipped records warn */
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	close(f->fd);
	snprintf(cmd, sizeof cmd, "rm -rf -- '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Ids are "r" followed by digits. */
static int
valid_id(const char *id)
{
	if (id[0] != 'r' || !id[1])
		return -EINVAL;
	return strspn(id + 1, "0123456789") == strlen(id + 1) ? 0 : -EINVAL;
}

static int
on_load(void *ud, const char *id, json_t *rec, struct nq_error *err)
{
	struct seen *s = ud;
	const char *v = json_string_value(json_object_get(rec, "v"));

	if (s->answer < 0)
		return s->answer == -ENOMEM
			       ? -ENOMEM
			       : nq_error_set(err, "invalid_field", "v", "refused");
	assert_non_null(v);
	assert_true(s->n < 8);
	snprintf(s->ids[s->n++], sizeof s->ids[0], "%s=%s", id, v);
	return 0;
}

static void
put(int fd, const char *name, const char *text)
{
	int w = openat(fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	assert_true(w >= 0);
	assert_int_equal(write(w, text, strlen(text)), (ssize_t)strlen(text));
	close(w);
}

static int
load(int fd, struct seen *s, size_t max_records)
{
	const struct record_load o = {
		.what = "test",
		.max_bytes = 256,
		.max_records = max_records,
		.valid_id = valid_id,
		.load = on_load,
		.ud = s,
	};
	return record_store_load_all(fd, &o);
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void
test_save_load_remove(void **state)
{
	struct fixture *f = *state;
	struct seen s = { 0 };
	struct stat st;

	assert_int_equal(record_store_save(f->fd, "r1", json_pack("{s:s}", "v", "one")), 0);
	assert_int_equal(record_store_save(f->fd, "r2", json_pack("{s:s}", "v", "two")), 0);
	assert_int_equal(record_store_save(f->fd, "r3", NULL), -ENOMEM);
	assert_int_equal(fstatat(f->fd, "r1.json", &st, AT_SYMLINK_NOFOLLOW), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(load(f->fd, &s, 0), 0);
	assert_int_equal(s.n, 2);
	qsort(s.ids, s.n, sizeof s.ids[0], cmp_str);
	assert_string_equal(s.ids[0], "r1=one");
	assert_string_equal(s.ids[1], "r2=two");

	assert_int_equal(record_store_remove(f->fd, "r1"), 0);
	assert_int_equal(record_store_remove(f->fd, "r1"), 0); /* gone is fine */
	memset(&s, 0, sizeof s);
	assert_int_equal(load(f->fd, &s, 0), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.ids[0], "r2=two");
}

static void
test_bad_records_are_skipped(void **state)
{
	struct fixture *f = *state;
	struct seen s = { 0 };
	char big[400];

	put(f->fd, "r1.json", "{\"v\":\"good\"}");
	put(f->fd, "r2.json", "{\"v\":\"a\",\"v\":\"b\"}"); /* duplicate key */
	put(f->fd, "r3.json", "[\"v\"]");                   /* not an object */
	put(f->fd, "r4.json", "{\"v\":");                   /* not JSON */
	memset(big, ' ', sizeof big - 1);
	big[0] = '{';
	big[sizeof big - 2] = '}';
	big[sizeof big - 1] = '\0';
	put(f->fd, "r5.json", big);                  /* over max_bytes */
	put(f->fd, "x6.json", "{\"v\":\"bad id\"}"); /* valid_id refuses */
	put(f->fd, ".r7.json", "{\"v\":\"temp\"}");  /* temp file */
	put(f->fd, "r8.txt", "{\"v\":\"other\"}");   /* not .json */
	put(f->fd, "target", "{\"v\":\"via link\"}");
	assert_int_equal(symlinkat("target", f->fd, "r9.json"), 0);
	assert_int_equal(mkdirat(f->fd, "r10.json", 0700), 0);
	assert_int_equal(load(f->fd, &s, 0), 0);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.ids[0], "r1=good");
}

static void
test_callback_refusal_and_enomem(void **state)
{
	struct fixture *f = *state;
	struct seen s = { .answer = -EINVAL };

	put(f->fd, "r1.json", "{\"v\":\"x\"}");
	assert_int_equal(load(f->fd, &s, 0), 0); /* refused: skipped */
	assert_int_equal(s.n, 0);
	s.answer = -ENOMEM;
	assert_int_equal(load(f->fd, &s, 0), -ENOMEM);
}

static void
test_max_records(void **state)
{
	struct fixture *f = *state;
	struct seen s = { 0 };

	put(f->fd, "r1.json", "{\"v\":\"1\"}");
	put(f->fd, "r2.json", "{\"v\":\"2\"}");
	put(f->fd, "r3.json", "{\"v\":\"3\"}");
	assert_int_equal(load(f->fd, &s, 2), 0);
	assert_int_equal(s.n, 2);
}

static void
test_bad_ids_on_save(void **state)
{
	struct fixture *f = *state;
	char longid[RECORD_ID_MAX + 2];

	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	assert_int_equal(record_store_save(f->fd, "", json_object()), -ENAMETOOLONG);
	assert_int_equal(record_store_save(f->fd, longid, json_object()), -ENAMETOOLONG);
	assert_int_equal(record_store_remove(f->fd, longid), -ENAMETOOLONG);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_save_load_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_records_are_skipped, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_callback_refusal_and_enomem, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_max_records, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_ids_on_save, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
