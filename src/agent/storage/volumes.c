#include "agent/storage/volumes.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/debug_gate.h"
#include "common/log.h"
#include "common/validate.h"
#include "agent/storage/basecache.h"
#include "agent/storage/inflight.h"
#include "agent/storage/volumes_internal.h"

static void
volume_name(const struct storage_kind_ops *k, const char *volume_id, char *buf,
	size_t bufsz, bool tmp)
{
	snprintf(buf, bufsz, tmp ? ".%s-%s.raw.tmp" : "%s-%s.raw", k->file_prefix,
		volume_id);
}

void
volumes_lease_name(const struct storage_kind_ops *k, const char *volume_id, char *buf,
	size_t bufsz)
{
	snprintf(buf, bufsz, ".%s-%s.lease", k->file_prefix, volume_id);
}

/* A temp file nobody has written for this long is what an interrupted
 * clone (server gone mid-copy, agent killed) left behind. A live clone
 * writes continuously, so another host's clone into the same share is
 * never this old. */
#define STALE_TMP_SECS (10 * 60)

/* "[.]<prefix>-<uuid>.raw[.tmp]" → uuid (as written: lower case), or
 * false. */
static bool
parse_name(const struct storage_kind_ops *k, const char *n, bool tmp,
	char id[NQ_UUID_LEN + 1])
{
	char want[80], got[NQ_UUID_LEN + 1];

	volume_name(k, "00000000-0000-0000-0000-000000000000", want, sizeof want, tmp);
	if (strlen(n) != strlen(want))
		return false;
	size_t off = strlen(k->file_prefix) + 1 + tmp;
	if (strncmp(n, want, off) ||
		strcmp(n + off + NQ_UUID_LEN, want + off + NQ_UUID_LEN))
		return false;
	memcpy(got, n + off, NQ_UUID_LEN);
	got[NQ_UUID_LEN] = '\0';
	return validate_uuid("volume_id", got, id, NULL) == 0 && !strcmp(id, got);
}

/* Remove stale temp files of interrupted clones in the volume dir. */
static void
sweep_stale_tmp(const struct storage_kind_ops *k, int dfd, const char *backend_id)
{
	time_t now = time(NULL);
	struct dirent *de;
	DIR *d;

	if (fs_opendir(dfd, &d) < 0)
		return;
	while ((de = readdir(d))) {
		char id[NQ_UUID_LEN + 1];
		struct stat st;

		if (!parse_name(k, de->d_name, true, id) || inflight_has(id) ||
			fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			!S_ISREG(st.st_mode) || now - st.st_mtime < STALE_TMP_SECS)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			log_info("removed the temp file of an interrupted clone "
				 "backend_id=%s volume_id=%s",
				backend_id, id);
	}
	closedir(d);
}

static int64_t
allocated(const struct stat *st, bool known)
{
	return known ? (int64_t)st->st_blocks * 512 : -1;
}

static json_t *
allocated_json(int64_t v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static int
io_error(const struct storage_kind_ops *k, struct nq_error *err, int r, const char *what)
{
	if (r == -ENOSPC || r == -EDQUOT)
		return nq_error_setr(err, r, "no_space", NULL,
			"the backend ran out of space while %s", what);
	if (r == -EACCES || r == -EPERM || r == -EROFS)
		return nq_error_setr(err, r, k->not_writable_code, NULL,
			"the %s refused a write while %s (%s)", k->write_target, what,
			strerror(-r));
	if (k->io_error && k->io_error(r, what, err) < 0)
		return r;
	return nq_error_setr(err, r, "io_error", NULL, "%s failed: %s", what, strerror(-r));
}

static int
fill_clone(struct agent *a, const struct storage_kind_ops *k, int dfd, int dst,
	const char *backend_id, const char *image, uint64_t *size,
	struct volume_info *info, struct nq_error *err)
{
	_cleanup_close_ int src = -1;
	struct stat st;
	int r;

	src = fs_open_beneath(a->image_dirfd, image, O_RDONLY, 0);
	if (src < 0 || fstat(src, &st) < 0 || !S_ISREG(st.st_mode))
		return nq_error_setr(err, -ENOENT, "image_not_found", "image",
			"no base image named '%s' in the agent's image directory", image);
	if (*size == 0)
		*size = (uint64_t)st.st_size;
	if (*size < (uint64_t)st.st_size)
		return nq_error_setr(err, -EINVAL, "invalid_field", "size_bytes",
			"size_bytes (%llu) is smaller than the image (%lld bytes)",
			(unsigned long long)*size, (long long)st.st_size);
	/* A share: clone from its base cache on the server where it can. */
	if (k->shared) {
		int cerr = 0;

		info->cache = basecache_clone(a, backend_id, dfd, src, image, &st, dst,
			&info->copy, &cerr);
		if (info->cache == BASECACHE_HIT || info->cache == BASECACHE_FILLED)
			return 0;
		if (info->cache == BASECACHE_FAILED)
			return io_error(k, err, cerr,
				"cloning the base image on the share");
	}
	r = fs_sparse_copy(src, dst, &info->copy);
	if (r < 0)
		return io_error(k, err, r, "copying the base image");
	return 0;
}

/* Test pause point: the data is in the temp file, nothing final yet.
 * Then -ECANCELED when a delete of volume_id cancelled this creation. */
static int
check_cancelled(unsigned long seq, const char *volume_id, struct nq_error *err)
{
	debug_gate("clone", inflight_cancelled, &seq);
	if (inflight_cancelled(&seq))
		return nq_error_setr(err, -ECANCELED, "cancelled", NULL,
			"the creation of volume %s was cancelled by a delete", volume_id);
	return 0;
}

/* Size the filled temp file, flush it, close it (*fd becomes -1) and
 * rename it into place as name. The caller removes tmp on failure. */
static int
finish_volume(const struct storage_kind_ops *k, int dfd, int *fd, const char *tmp,
	const char *name, uint64_t size, struct nq_error *err)
{
	struct stat st;

	if (fstat(*fd, &st) < 0 ||
		((uint64_t)st.st_size < size && ftruncate(*fd, (off_t)size) < 0))
		return io_error(k, err, negerrno(), "sizing the volume file");
	if (fsync(*fd) < 0)
		return io_error(k, err, negerrno(), "flushing the volume file");
	/* SMB servers refuse to rename a file that is still open. */
	if (close(TAKE_FD(*fd)) < 0)
		return io_error(k, err, negerrno(), "closing the volume file");
	if (renameat(dfd, tmp, dfd, name) < 0)
		return io_error(k, err, negerrno(), "renaming the volume file into place");
	fsync(dfd);
	return 0;
}

/* In the open volume dir: a new volume_id from image (or empty). */
static int
create_in(struct agent *a, const struct storage_kind_ops *k, int dfd, const char *dir,
	const char *backend_id, const char *volume_id, const char *image, uint64_t size,
	unsigned long seq, struct volume_info *ret, struct nq_error *err)
{
	char name[80], tmp[80];
	struct volume_info info = { 0 };
	_cleanup_close_ int fd = -1;
	struct stat st;
	int r;

	volume_name(k, volume_id, name, sizeof name, false);
	volume_name(k, volume_id, tmp, sizeof tmp, true);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return nq_error_setr(err, -EEXIST, "volume_exists", "volume_id",
			"volume %s already exists on this backend", volume_id);
	sweep_stale_tmp(k, dfd, backend_id);
	/* A temp file left by an interrupted create is ours to replace. */
	unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return io_error(k, err, negerrno(), "creating the volume file");
	r = image ? fill_clone(a, k, dfd, fd, backend_id, image, &size, &info, err) : 0;
	if (r >= 0)
		r = check_cancelled(seq, volume_id, err);
	return volumes_settle(k, dfd, &fd, tmp, name, dir, size, r, &info, ret, err);
}

int
volumes_create(struct agent *a, const struct storage_kind_ops *k, const char *backend_id,
	const char *volume_id, const char *image, uint64_t size_bytes,
	struct volume_info *ret, struct nq_error *err)
{
	char dir[PATH_MAX];
	struct volume_info info;
	bool alloc_known = true;
	_cleanup_close_ int dfd = -1;
	unsigned long seq;
	int r;

	if (!image && size_bytes == 0)
		return nq_error_set(err, "missing_field", "size_bytes",
			"size_bytes is required when no image is given");
	if (size_bytes > VOLUME_SIZE_MAX)
		return nq_error_set(err, "invalid_field", "size_bytes",
			"size_bytes must be at most %llu", VOLUME_SIZE_MAX);
	if (inflight_begin(volume_id, false, INFLIGHT_WAIT_SECS, &seq) < 0)
		return nq_error_setr(err, -EBUSY, "busy", NULL,
			"volume %s is being deleted, or too many volume operations are in "
			"progress on this host; retry",
			volume_id);
	dfd = k->open_volume_dir(a, backend_id, dir, sizeof dir, &alloc_known, err);
	if (dfd < 0) {
		inflight_end(seq);
		return dfd;
	}
	r = create_in(a, k, dfd, dir, backend_id, volume_id, image, size_bytes, seq, &info,
		err);
	inflight_end(seq);
	k->release_volume_dir(a, backend_id);
	if (r < 0)
		return r;
	if (!alloc_known)
		info.allocated_bytes = -1;
	log_info("volume created kind=%s backend_id=%s volume_id=%s image=%s size=%llu "
		 "data_written=%llu copy=%s base_cache=%s",
		k->name, backend_id, volume_id, image ? image : "-",
		(unsigned long long)info.size_bytes,
		(unsigned long long)info.copy.bytes_written,
		info.copy.method ? copy_method_name(info.copy.method) : "-",
		basecache_outcome_name(info.cache));
	*ret = info;
	return 0;
}

int
volumes_list(struct agent *a, const struct storage_kind_ops *k, const char *backend_id,
	json_t **ret, struct nq_error *err)
{
	char dir[PATH_MAX];
	bool alloc_known = true;
	_cleanup_close_ int dfd = k->open_volume_dir(a, backend_id, dir, sizeof dir,
		&alloc_known, err);
	json_t *arr;
	DIR *d;
	struct dirent *de;
	int r;

	if (dfd < 0)
		return dfd;
	r = fs_opendir(dfd, &d);
	if (r < 0) {
		k->release_volume_dir(a, backend_id);
		return io_error(k, err, r, "listing volumes");
	}
	arr = json_array();
	while (arr && (de = readdir(d))) {
		char id[NQ_UUID_LEN + 1], path[PATH_MAX + 512];
		struct stat st;

		if (!parse_name(k, de->d_name, false, id) ||
			fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			!S_ISREG(st.st_mode))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		json_array_append_new(arr,
			json_pack("{s:s, s:s, s:I, s:o}", "volume_id", id, "path", path,
				"size_bytes", (json_int_t)st.st_size, "allocated_bytes",
				allocated_json(allocated(&st, alloc_known))));
	}
	closedir(d);
	k->release_volume_dir(a, backend_id);
	if (!arr)
		return -ENOMEM;
	*ret = arr;
	return 0;
}

int
volumes_delete(struct agent *a, const struct storage_kind_ops *k, const char *backend_id,
	const char *volume_id, struct nq_error *err)
{
	char dir[PATH_MAX], name[80], tmp[80];
	_cleanup_close_ int dfd = -1;
	unsigned long seq;
	int r = 0;

	/* Registered before anything can block, so that a creation arriving
	 * later waits for us instead of being cancelled by us. */
	if (inflight_begin(volume_id, true, INFLIGHT_WAIT_SECS, &seq) < 0)
		return nq_error_setr(err, -EBUSY, "busy", NULL,
			"too many volume operations are in progress on this host; retry");
	dfd = k->open_volume_dir(a, backend_id, dir, sizeof dir, NULL, err);
	if (dfd < 0) {
		inflight_end(seq);
		return dfd;
	}
	/* A creation in progress is cancelled first: it must not rename its
	 * file into place after we have deleted. */
	inflight_cancel_wait(volume_id, seq, INFLIGHT_WAIT_SECS);
	volume_name(k, volume_id, name, sizeof name, false);
	volume_name(k, volume_id, tmp, sizeof tmp, true);
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		r = io_error(k, err, negerrno(), "deleting the volume file");
	unlinkat(dfd, tmp, 0);
	if (r == 0) {
		fsync(dfd);
		log_info("volume deleted kind=%s backend_id=%s volume_id=%s", k->name,
			backend_id, volume_id);
	}
	inflight_end(seq);
	k->release_volume_dir(a, backend_id);
	return r;
}

int
volumes_pin_rootfs(struct agent *a, const struct storage_kind_ops *k,
	const char *backend_id, const char *volume_id, char *ret_path, size_t pathsz,
	struct nq_error *err)
{
	char dir[PATH_MAX], name[80];
	_cleanup_close_ int dfd = k->open_volume_dir(a, backend_id, dir, sizeof dir, NULL,
		err);
	struct stat st;

	if (dfd < 0)
		return dfd;
	volume_name(k, volume_id, name, sizeof name, false);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
		k->release_volume_dir(a, backend_id);
		return nq_error_setr(err, -ENOENT, "volume_missing", "volume_id",
			"volume %s does not exist on %s backend %s", volume_id, k->name,
			backend_id);
	}
	if ((size_t)snprintf(ret_path, pathsz, "%s/%s", dir, name) >= pathsz) {
		k->release_volume_dir(a, backend_id);
		return nq_error_setr(err, -ENAMETOOLONG, "io_error", NULL,
			"rootfs path too long");
	}
	return 0;
}

void
volumes_unpin(struct agent *a, const struct storage_kind_ops *k, const char *backend_id)
{
	k->release_volume_dir(a, backend_id);
}

int
images_list(struct agent *a, json_t **ret)
{
	json_t *arr;
	DIR *d;
	struct dirent *de;
	int r = fs_opendir(a->image_dirfd, &d);

	if (r < 0)
		return r;
	arr = json_array();
	while (arr && (de = readdir(d))) {
		struct stat st;

		if (validate_image_name("image", de->d_name, NULL) < 0 ||
			fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			!S_ISREG(st.st_mode))
			continue;
		json_array_append_new(arr,
			json_pack("{s:s, s:I, s:I}", "name", de->d_name, "size_bytes",
				(json_int_t)st.st_size, "allocated_bytes",
				(json_int_t)st.st_blocks * 512));
	}
	closedir(d);
	if (!arr)
		return -ENOMEM;
	*ret = arr;
	return 0;
}

/* volumes_internal.h: the helpers volumes_copy.c shares. */
void
volumes_file_name(const struct storage_kind_ops *k, const char *volume_id, char *buf,
	size_t bufsz, bool tmp)
{
	volume_name(k, volume_id, buf, bufsz, tmp);
}

int
volumes_io_error(const struct storage_kind_ops *k, struct nq_error *err, int r,
	const char *what)
{
	return io_error(k, err, r, what);
}

int
volumes_settle(const struct storage_kind_ops *k, int dfd, int *fd, const char *tmp,
	const char *name, const char *dir, uint64_t size, int r, struct volume_info *info,
	struct volume_info *ret, struct nq_error *err)
{
	struct stat st;

	if (r >= 0)
		r = finish_volume(k, dfd, fd, tmp, name, size, err);
	if (r < 0) {
		/* SMB servers refuse to delete a file that is still open. */
		if (*fd >= 0)
			close(TAKE_FD(*fd));
		unlinkat(dfd, tmp, 0);
		return r;
	}
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return io_error(k, err, negerrno(), "reading the volume's size");
	snprintf(info->path, sizeof info->path, "%s/%s", dir, name);
	info->size_bytes = (uint64_t)st.st_size;
	info->allocated_bytes = (int64_t)st.st_blocks * 512;
	*ret = *info;
	return 0;
}
