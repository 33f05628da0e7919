/* Localfile backends: see localdirs.h. The table is small and its
 * operations are local file-system calls, so one lock covers each call. */
#include "agent/storage/localdirs.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/record_store.h"
#include "common/validate.h"

#define RECORD_MAX 8192

/* File systems a localfile backend must not sit on: a share mounted by
 * the kernel or through FUSE (nqrust-smbfs) belongs to an smb backend. */
#define CIFS_SUPER_MAGIC 0xFF534D42
#define SMB2_SUPER_MAGIC 0xFE534D42
#define FUSE_SUPER_MAGIC 0x65735546

struct localdir {
	char id[NQ_UUID_LEN + 1];
	char path[PATH_MAX];
};

struct localdirs {
	pthread_mutex_t lock;
	struct localdir *v[LOCALDIR_MAX];
	int root_fd;   /* --local-root */
	int record_fd; /* <state_dir>/localfile */
};

int
localdirs_new(struct localdirs **ret)
{
	struct localdirs *t = calloc(1, sizeof *t);

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->root_fd = t->record_fd = -1;
	*ret = t;
	return 0;
}

void
localdirs_free(struct localdirs *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < LOCALDIR_MAX; i++)
		free(t->v[i]);
	closep(&t->root_fd);
	closep(&t->record_fd);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static struct localdir **
slot_of(struct localdirs *t, const char *id)
{
	for (size_t i = 0; i < LOCALDIR_MAX; i++)
		if (t->v[i] && !strcmp(t->v[i]->id, id))
			return &t->v[i];
	return NULL;
}

/* The path relative to the local root ("." for the root itself), after
 * checking it lies there. */
static int
relative(struct agent *a, const char *path, const char **ret, struct nq_error *err)
{
	size_t rl = strlen(a->cfg.local_root);
	int r = validate_path_under("path", path, a->cfg.local_root, err);

	if (r < 0)
		return r;
	if (path[rl] == '\0')
		*ret = ".";
	else
		*ret = path + rl + (rl > 1); /* skip the '/' after a root other than "/" */
	return 0;
}

/* An O_DIRECTORY fd of path, created beneath the local root without
 * following symlinks; checked to be a local, writable file system. */
static int
open_checked(struct agent *a, const char *path, bool create, struct nq_error *err)
{
	_cleanup_close_ int fd = -1;
	const char *rel;
	char probe[64];
	struct statfs sf;
	int r, pfd;

	if ((r = relative(a, path, &rel, err)) < 0)
		return r;
	if (create)
		fd = fs_mkdir_beneath(a->locals->root_fd, rel, 0700);
	else if (strcmp(rel, "."))
		fd = fs_open_beneath(a->locals->root_fd, rel, O_RDONLY | O_DIRECTORY, 0);
	else if ((fd = openat(a->locals->root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) <
		 0)
		fd = negerrno();
	if (fd < 0) {
		r = fd;
		fd = -1;
		return nq_error_setr(err, r, "invalid_field", "path",
			"path %s cannot be %s beneath the local root (symlinks are not "
			"followed): %s",
			path, create ? "created" : "opened", strerror(-r));
	}
	if (fstatfs(fd, &sf) < 0)
		return nq_error_setr(err, negerrno(), "io_error", NULL,
			"cannot read the file system of %s: %s", path, strerror(errno));
	if (sf.f_type == CIFS_SUPER_MAGIC || sf.f_type == SMB2_SUPER_MAGIC ||
		sf.f_type == FUSE_SUPER_MAGIC)
		return nq_error_setr(err, -EXDEV, "invalid_field", "path",
			"path %s is on a network or FUSE file system; add that share as "
			"an smb backend instead",
			path);
	if (!create)
		return TAKE_FD(fd);
	/* Prove writability the way a volume create will use the directory. */
	snprintf(probe, sizeof probe, ".nqrust-probe-%d", (int)getpid());
	pfd = openat(fd, probe, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		0600);
	if (pfd < 0)
		return nq_error_setr(err, negerrno(), "not_writable", "path",
			"path %s is not writable: %s", path, strerror(errno));
	close(pfd);
	unlinkat(fd, probe, 0);
	return TAKE_FD(fd);
}

static int
save(struct agent *a, const struct localdir *d)
{
	return record_store_save(a->locals->record_fd, d->id,
		json_pack("{s:s, s:s}", "id", d->id, "path", d->path));
}

static int
valid_id(const char *id)
{
	char bid[NQ_UUID_LEN + 1];

	return validate_backend_id("id", id, bid, NULL);
}

/* Records are ours, but a corrupt one must not make the agent use a path
 * outside the local root: re-validate. */
static int
load_one(void *ud, const char *file_id, json_t *j, struct nq_error *err)
{
	struct agent *a = ud;
	struct localdirs *t = a->locals;
	const char *id, *path;
	struct localdir *d;
	size_t k = 0;

	(void)file_id;
	while (k < LOCALDIR_MAX && t->v[k])
		k++;
	if (k == LOCALDIR_MAX)
		return nq_error_set(err, "conflict", NULL, "more than %d records",
			LOCALDIR_MAX);
	id = json_string_value(json_object_get(j, "id"));
	path = json_string_value(json_object_get(j, "path"));
	d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	if (!id || !path || strlen(path) >= sizeof d->path ||
		validate_backend_id("id", id, d->id, err) < 0 ||
		validate_path_under("path", path, a->cfg.local_root, err) < 0) {
		free(d);
		return nq_error_is_set(err)
			       ? -EINVAL
			       : nq_error_set(err, "invalid_field", NULL,
					 "id or path missing");
	}
	snprintf(d->path, sizeof d->path, "%s", path);
	t->v[k] = d;
	return 0;
}

int
localdirs_restore(struct agent *a)
{
	struct localdirs *t = a->locals;
	const struct record_load o = {
		.what = "localfile",
		.max_bytes = RECORD_MAX,
		.max_records = LOCALDIR_MAX,
		.valid_id = valid_id,
		.load = load_one,
		.ud = a,
	};
	int r;

	r = fs_mkdir_p(a->cfg.local_root, 0700);
	if (r < 0)
		return r;
	t->root_fd = open(a->cfg.local_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->root_fd < 0)
		return negerrno();
	t->record_fd = fs_mkdir_beneath(a->state_dirfd, "localfile", 0700);
	if (t->record_fd < 0)
		return t->record_fd;
	return record_store_load_all(t->record_fd, &o);
}

int
localdirs_attach(struct agent *a, const char *id, const char *path, char *ret_dir,
	size_t dirsz, struct nq_error *err)
{
	struct localdirs *t = a->locals;
	struct localdir d = { 0 }, **slot;
	_cleanup_close_ int fd = -1;
	int r;

	if (!path || !*path)
		path = a->cfg.local_root;
	if (strlen(path) >= sizeof d.path)
		return nq_error_set(err, "invalid_field", "path", "path is too long");
	snprintf(d.id, sizeof d.id, "%s", id);
	snprintf(d.path, sizeof d.path, "%s", path);
	if (strlen(d.path) >= dirsz)
		return nq_error_setr(err, -ENAMETOOLONG, "internal_error", NULL,
			"path too long");
	pthread_mutex_lock(&t->lock);
	fd = open_checked(a, d.path, true, err);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	slot = slot_of(t, id);
	for (size_t i = 0; !slot && i < LOCALDIR_MAX; i++)
		if (!t->v[i])
			slot = &t->v[i];
	if (!slot) {
		r = nq_error_setr(err, -ENOSPC, "conflict", NULL,
			"this host has %d localfile backends already", LOCALDIR_MAX);
		goto out;
	}
	r = save(a, &d);
	if (r < 0) {
		nq_error_setr(err, r, "io_error", NULL, "cannot record the backend: %s",
			strerror(-r));
		goto out;
	}
	if (!*slot && !(*slot = calloc(1, sizeof **slot))) {
		r = nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
		goto out;
	}
	**slot = d;
	snprintf(ret_dir, dirsz, "%s", d.path);
	log_info("localfile backend attached backend_id=%s dir=%s", id, d.path);
	r = 0;
out:
	pthread_mutex_unlock(&t->lock);
	return r;
}

int
localdirs_detach(struct agent *a, const char *id, struct nq_error *err)
{
	struct localdirs *t = a->locals;
	struct localdir **slot;
	int r;

	pthread_mutex_lock(&t->lock);
	r = record_store_remove(t->record_fd, id);
	if (r < 0)
		nq_error_setr(err, r, "io_error", NULL,
			"cannot delete the backend record: %s", strerror(-r));
	slot = slot_of(t, id);
	if (r == 0 && slot) {
		free(*slot);
		*slot = NULL;
		log_info("localfile backend detached backend_id=%s", id);
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

int
localdirs_open(struct agent *a, const char *id, char *ret_dir, size_t dirsz,
	struct nq_error *err)
{
	struct localdirs *t = a->locals;
	struct localdir **slot;
	int fd;

	pthread_mutex_lock(&t->lock);
	slot = slot_of(t, id);
	if (!slot)
		fd = nq_error_setr(err, -ENOENT, "not_found", "backend_id",
			"no localfile backend %s on this host", id);
	else if ((fd = open_checked(a, (*slot)->path, false, err)) >= 0)
		snprintf(ret_dir, dirsz, "%s", (*slot)->path);
	pthread_mutex_unlock(&t->lock);
	return fd;
}

int
localdirs_capacity(struct agent *a, const char *id, struct capacity *ret,
	struct nq_error *err)
{
	char dir[PATH_MAX];
	_cleanup_close_ int fd = localdirs_open(a, id, dir, sizeof dir, err);
	struct statvfs sv;

	if (fd < 0)
		return fd;
	if (fstatvfs(fd, &sv) < 0)
		return nq_error_setr(err, negerrno(), "io_error", NULL,
			"cannot read the capacity of %s: %s", dir, strerror(errno));
	ret->total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
	ret->free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	/* total - available, as for a share (mounts.h): one meaning of used
	 * for every kind. */
	ret->used_bytes = ret->total_bytes > ret->free_bytes
				  ? ret->total_bytes - ret->free_bytes
				  : 0;
	return 0;
}

json_t *
localdirs_list_json(struct agent *a)
{
	struct localdirs *t = a->locals;
	json_t *arr = json_array();

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; arr && i < LOCALDIR_MAX; i++)
		if (t->v[i])
			json_array_append_new(arr,
				json_pack("{s:s, s:s}", "backend_id", t->v[i]->id,
					"volume_dir", t->v[i]->path));
	pthread_mutex_unlock(&t->lock);
	return arr;
}
