/* Directories of <id>.json records: see record_store.h. */
#include "common/record_store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"

static int
record_name(const char *id, char *buf, size_t bufsz)
{
	if (!id || !*id || (size_t)snprintf(buf, bufsz, "%s.json", id) >= bufsz)
		return -ENAMETOOLONG;
	return 0;
}

int
record_store_save(int dirfd, const char *id, json_t *j)
{
	char name[RECORD_ID_MAX + 6];
	char *text;
	int r;

	text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return -ENOMEM;
	r = record_name(id, name, sizeof name);
	if (r >= 0)
		r = fs_write_atomic(dirfd, name, text, strlen(text), 0600);
	free(text);
	return r;
}

int
record_store_remove(int dirfd, const char *id)
{
	char name[RECORD_ID_MAX + 6];
	int r = record_name(id, name, sizeof name);

	if (r < 0)
		return r;
	if (unlinkat(dirfd, name, 0) < 0 && errno != ENOENT)
		return negerrno();
	return 0;
}

/* The id of a record file name, or -EINVAL for anything that is not one. */
static int
id_of(const char *file, char *id, size_t idsz)
{
	size_t len = strlen(file);

	if (file[0] == '.' || len < 6 || strcmp(file + len - 5, ".json") != 0 ||
		len - 5 >= idsz)
		return -EINVAL;
	memcpy(id, file, len - 5);
	id[len - 5] = '\0';
	return 0;
}

/* Read, parse and hand over one file. < 0 with err set when skipped. */
static int
load_one(int dirfd, const char *file, const char *id, const struct record_load *o,
	struct nq_error *err)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_(json_decrefp) json_t *j = NULL;
	json_error_t jerr;
	size_t len = 0;
	int r;

	r = fs_read_file(dirfd, file, o->max_bytes ? o->max_bytes : RECORD_MAX_DEFAULT,
		&text, &len);
	if (r < 0)
		return nq_error_setr(err, r, "io_error", NULL, "cannot read it: %s",
			strerror(-r));
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(j))
		return nq_error_set(err, "invalid_json", NULL,
			"not a JSON object (line %d, column %d)", jerr.line, jerr.column);
	return o->load(o->ud, id, j, err);
}

int
record_store_load_all(int dirfd, const struct record_load *o)
{
	char id[RECORD_ID_MAX + 1];
	struct dirent *de;
	size_t taken = 0;
	DIR *d;
	int r;

	r = fs_opendir(dirfd, &d);
	if (r < 0)
		return r;
	while ((!o->max_records || taken < o->max_records) && (de = readdir(d))) {
		struct nq_error err = { 0 };

		if (id_of(de->d_name, id, sizeof id) < 0)
			continue;
		if (o->valid_id(id) < 0) {
			log_warn("skipping %s record with an invalid name file=%.200s",
				o->what, de->d_name);
			continue;
		}
		r = load_one(dirfd, de->d_name, id, o, &err);
		if (r == -ENOMEM)
			break;
		if (r < 0)
			log_warn("skipping invalid %s record file=%s err=%s", o->what,
				de->d_name, err.message);
		else
			taken++;
	}
	closedir(d);
	return r == -ENOMEM ? r : 0;
}
