/* GET and DELETE of a backend's base cache; see basecache.h. */
#include "agent/storage/basecache_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"

static json_t *
iso_time(time_t t)
{
	struct tm tm;
	char buf[32];

	if (!gmtime_r(&t, &tm) || !strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
		return json_null();
	return json_string(buf);
}

/* "<hex><suffix>" → hex, or false. */
static bool
entry_hex(const char *name, const char *suffix, char hex[IMAGE_HASH_HEX + 1])
{
	if (strlen(name) != IMAGE_HASH_HEX + strlen(suffix) ||
		strcmp(name + IMAGE_HASH_HEX, suffix) != 0)
		return false;
	memcpy(hex, name, IMAGE_HASH_HEX);
	hex[IMAGE_HASH_HEX] = '\0';
	return image_hash_valid(hex);
}

static void
add_name(const char *name, void *arg)
{
	json_t *arr = arg;
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (!strcmp(json_string_value(v), name))
			return;
	json_array_append_new(arr, json_string(name));
}

static bool
has(int cdfd, const char *hex, const char *suffix, struct stat *st)
{
	char name[BC_NAME_MAX];

	bc_name(name, sizeof name, hex, suffix);
	return fstatat(cdfd, name, st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st->st_mode);
}

static json_t *
entry_json(struct agent *a, const char *backend_id, int cdfd, const char *hex,
	bool alloc_known)
{
	struct stat raw, ext, mk;
	bool ready = has(cdfd, hex, ".raw", &raw),
	     filling = has(cdfd, hex, ".filling", &mk);
	char image[129] = "";
	json_t *images = json_array(), *o;
	struct fs_range *r = NULL;
	uint64_t size = 0;
	size_t n = 0;

	if (ready && bc_extents_read(cdfd, hex, &size, &r, &n, image) == 0 && image[0])
		add_name(image, images);
	free(r);
	image_hash_names(a, hex, add_name, images);
	o = json_pack("{s:s, s:s, s:o, s:I, s:o, s:o, s:o, s:I}", "hash", hex, "state",
		ready ? "ready" : "filling", "images", images, "size_bytes",
		(json_int_t)(ready ? raw.st_size : 0), "allocated_bytes",
		ready && alloc_known ? json_integer((json_int_t)raw.st_blocks * 512)
				     : json_null(),
		"created", ready ? iso_time(raw.st_mtime) : iso_time(mk.st_mtime),
		"last_used",
		ready && has(cdfd, hex, ".extents", &ext)
			? iso_time(ext.st_mtime)
			: json_null(),
		"in_use", (json_int_t)(bc_use_count(backend_id, hex) + (filling ? 1 : 0)));
	return o;
}

static int
open_cache_dir(int vdfd)
{
	int fd = openat(vdfd, BASECACHE_DIR,
		O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	return fd < 0 ? negerrno() : fd;
}

/* Call fn for each entry (ready or being filled) of the cache. */
static int
each_entry(int cdfd, int (*fn)(const char *hex, void *arg), void *arg)
{
	struct dirent *de;
	DIR *d;
	int r = fs_opendir(cdfd, &d);

	if (r < 0)
		return r;
	while ((de = readdir(d)) && r >= 0) {
		char hex[IMAGE_HASH_HEX + 1];
		struct stat st;

		if (entry_hex(de->d_name, ".raw", hex) ||
			(entry_hex(de->d_name, ".filling", hex) &&
				!has(cdfd, hex, ".raw", &st)))
			r = fn(hex, arg);
	}
	closedir(d);
	return r;
}

struct list_ctx {
	struct agent *a;
	const char *backend_id;
	int cdfd;
	bool alloc_known;
	json_t *out;
	const char *only; /* purge: just this hash */
	json_t *removed, *kept;
	bool found;
};

static int
list_one(const char *hex, void *arg)
{
	struct list_ctx *c = arg;

	return json_array_append_new(c->out,
		       entry_json(c->a, c->backend_id, c->cdfd, hex, c->alloc_known)) < 0
		       ? -ENOMEM
		       : 0;
}

int
basecache_list(struct agent *a, const char *backend_id, int vdfd, bool alloc_known,
	json_t **ret)
{
	_cleanup_close_ int cdfd = open_cache_dir(vdfd);
	struct list_ctx c = { .a = a,
		.backend_id = backend_id,
		.cdfd = cdfd,
		.alloc_known = alloc_known,
		.out = json_array() };
	int r;

	if (!c.out)
		return -ENOMEM;
	if (cdfd == -ENOENT) {
		*ret = c.out;
		return 0;
	}
	r = cdfd < 0 ? cdfd : each_entry(cdfd, list_one, &c);
	if (r < 0) {
		json_decref(c.out);
		return r;
	}
	*ret = c.out;
	return 0;
}

static int
purge_one(const char *hex, void *arg)
{
	struct list_ctx *c = arg;
	char raw[BC_NAME_MAX], ext[BC_NAME_MAX];
	const char *why = NULL;
	struct stat st;

	if (c->only && strcmp(c->only, hex) != 0)
		return 0;
	c->found = true;
	if (has(c->cdfd, hex, ".filling", &st))
		why = "filling";
	else if (bc_use_count(c->backend_id, hex) > 0)
		why = "in_use";
	if (why)
		return json_array_append_new(c->kept,
			       json_pack("{s:s, s:s}", "hash", hex, "reason", why)) < 0
			       ? -ENOMEM
			       : 0;
	bc_name(raw, sizeof raw, hex, ".raw");
	bc_name(ext, sizeof ext, hex, ".extents");
	if (unlinkat(c->cdfd, raw, 0) < 0 && errno != ENOENT)
		return json_array_append_new(c->kept,
			       json_pack("{s:s, s:s}", "hash", hex, "reason",
				       strerror(errno))) < 0
			       ? -ENOMEM
			       : 0;
	unlinkat(c->cdfd, ext, 0);
	log_info("base cache entry removed backend_id=%s sha256=%s", c->backend_id, hex);
	return json_array_append_new(c->removed, json_string(hex)) < 0 ? -ENOMEM : 0;
}

/* Whether a fill marker in the cache names tmp (a live fill's file). */
static bool
tmp_claimed(int cdfd, const char *tmp)
{
	struct dirent *de;
	bool found = false;
	DIR *d;

	if (fs_opendir(cdfd, &d) < 0)
		return true;
	while (!found && (de = readdir(d))) {
		char hex[IMAGE_HASH_HEX + 1], *buf = NULL;
		size_t len;

		if (entry_hex(de->d_name, ".filling", hex) &&
			fs_read_file(cdfd, de->d_name, 255, &buf, &len) == 0)
			found = len > 1 && !strncmp(buf, tmp, len - 1) &&
				strlen(tmp) == len - 1;
		free(buf);
	}
	closedir(d);
	return found;
}

/* Temp files of fills that died (no marker names them any more). */
static void
sweep_tmp(int cdfd)
{
	struct dirent *de;
	DIR *d;

	if (fs_opendir(cdfd, &d) < 0)
		return;
	while ((de = readdir(d)))
		if (de->d_name[0] == '.' && strstr(de->d_name, ".raw.tmp-") &&
			!tmp_claimed(cdfd, de->d_name) &&
			unlinkat(cdfd, de->d_name, 0) == 0)
			log_info("base cache: removed the temp file of a dead fill %s",
				de->d_name);
	closedir(d);
}

int
basecache_purge(struct agent *a, const char *backend_id, int vdfd, const char *hash,
	json_t **ret)
{
	_cleanup_close_ int cdfd = open_cache_dir(vdfd);
	struct list_ctx c = { .a = a,
		.backend_id = backend_id,
		.cdfd = cdfd,
		.only = hash,
		.removed = json_array(),
		.kept = json_array() };
	int r = 0;

	if (!hash)
		bc_forget_refused(backend_id); /* a fresh start: try server copies again */
	if (!c.removed || !c.kept)
		r = -ENOMEM;
	else if (cdfd >= 0)
		r = each_entry(cdfd, purge_one, &c);
	if (r >= 0 && cdfd >= 0 && !hash)
		sweep_tmp(cdfd);
	else if (cdfd != -ENOENT)
		r = cdfd;
	if (r >= 0 && hash && !c.found)
		r = -ENOENT;
	/* Emptied: the directory goes too (a create makes it again). */
	if (r >= 0 && !hash && cdfd >= 0 && json_array_size(c.kept) == 0)
		(void)unlinkat(vdfd, BASECACHE_DIR, AT_REMOVEDIR);
	if (r < 0) {
		json_decref(c.removed);
		json_decref(c.kept);
		return r;
	}
	*ret = json_pack("{s:o, s:o}", "removed", c.removed, "kept", c.kept);
	return *ret ? 0 : -ENOMEM;
}
