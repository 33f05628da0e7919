#include "agent/storage/volumes.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <pthread.h>
#include <time.h>

#include "common/debug_gate.h"
#include "common/log.h"
#include "common/validate.h"
#include "agent/storage/localdirs.h"
#include "agent/mounts/mounts.h"

static const char *
prefix(enum volume_kind k)
{
	return k == VOLUME_LOCAL ? "local" : "smb";
}

const char *
volume_kind_name(enum volume_kind k)
{
	return k == VOLUME_LOCAL ? "localfile" : "smb";
}

int
volume_kind_parse(const char *s, enum volume_kind *ret)
{
	if (!s || !*s || !strcmp(s, "smb"))
		*ret = VOLUME_SMB;
	else if (!strcmp(s, "localfile"))
		*ret = VOLUME_LOCAL;
	else
		return -EINVAL;
	return 0;
}

static void
volume_name(enum volume_kind k, const char *volume_id, char *buf, size_t bufsz, bool tmp)
{
	snprintf(buf, bufsz, tmp ? ".%s-%s.raw.tmp" : "%s-%s.raw", prefix(k), volume_id);
}

/* The backend's volume directory as an fd, its path in path. An SMB
 * backend's mount is pinned until release_volume_dir. alloc_known: the
 * file system reports real allocation (not through the FUSE driver). */
static int
open_volume_dir(struct agent *a, enum volume_kind k, const char *backend_id, char *path,
	size_t pathsz, bool *alloc_known, struct nq_error *err)
{
	enum mount_driver drv = DRIVER_KERNEL;
	int r, fd;

	if (k == VOLUME_LOCAL) {
		if (alloc_known)
			*alloc_known = true;
		return localdirs_open(a, backend_id, path, pathsz, err);
	}
	r = mounts_pin_volume_dir(a, backend_id, path, pathsz, &drv, err);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = negerrno();
		mounts_unpin(a, backend_id);
		return nq_error_setr(err, r, "io_error", NULL,
			"cannot open the backend's volume directory: %s", strerror(-r));
	}
	if (alloc_known)
		*alloc_known = drv != DRIVER_FUSE;
	return fd;
}

static void
release_volume_dir(struct agent *a, enum volume_kind k, const char *backend_id)
{
	if (k == VOLUME_SMB)
		mounts_unpin(a, backend_id);
}

/* A temp file nobody has written for this long is what an interrupted
 * clone (server gone mid-copy, agent killed) left behind. A live clone
 * writes continuously, so another host's clone into the same share is
 * never this old. */
#define STALE_TMP_SECS (10 * 60)
#define INFLIGHT_MAX 256
/* How long a delete waits for a cancelled creation to stop (it stops at
 * the end of the data copy at the latest). */
#define CANCEL_WAIT_SECS 300

/* Volume ids this agent is creating or deleting right now (never swept).
 * A delete cancels the creations of its id that began before it and
 * waits for them to end; a creation that arrives while a delete of its id
 * runs waits for that delete first. A delete can take long (its share may
 * be away and the bridge riding the outage through): without the order,
 * it would cancel, or remove the files of, a retry that came after it. */
static pthread_mutex_t inflight_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inflight_done = PTHREAD_COND_INITIALIZER;
static unsigned long inflight_seq;
static struct {
	char id[NQ_UUID_LEN + 1];
	unsigned long seq;
	bool deleting;
	bool cancel;
} inflight[INFLIGHT_MAX];

static struct timespec
inflight_deadline(void)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CANCEL_WAIT_SECS;
	return until;
}

/* Under the lock: whether an entry for id matches (deleting, seq < below). */
static bool
inflight_find_locked(const char *id, bool deleting, unsigned long below)
{
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (inflight[i].deleting == deleting && inflight[i].seq < below &&
		    !strcmp(inflight[i].id, id))
			return true;
	return false;
}

/* Register a creation (after the deletes of id in progress, bounded) or a
 * delete of id. 0 with *ret_seq, or -EBUSY when the table is full or a
 * delete did not end in time. */
static int
inflight_begin(const char *id, bool deleting, unsigned long *ret_seq)
{
	struct timespec until = inflight_deadline();
	int r = -EBUSY;

	pthread_mutex_lock(&inflight_lock);
	while (!deleting && inflight_find_locked(id, true, ULONG_MAX))
		if (pthread_cond_timedwait(&inflight_done, &inflight_lock, &until) == ETIMEDOUT)
			goto out;
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (!inflight[i].id[0]) {
			snprintf(inflight[i].id, sizeof inflight[i].id, "%s", id);
			inflight[i].seq = *ret_seq = ++inflight_seq;
			inflight[i].deleting = deleting;
			inflight[i].cancel = false;
			r = 0;
			break;
		}
out:
	pthread_mutex_unlock(&inflight_lock);
	return r;
}

static void
inflight_end(unsigned long seq)
{
	pthread_mutex_lock(&inflight_lock);
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (inflight[i].seq == seq && inflight[i].id[0])
			inflight[i].id[0] = '\0';
	pthread_cond_broadcast(&inflight_done);
	pthread_mutex_unlock(&inflight_lock);
}

static bool
inflight_has(const char *id)
{
	bool found;

	pthread_mutex_lock(&inflight_lock);
	found = inflight_find_locked(id, false, ULONG_MAX) ||
		inflight_find_locked(id, true, ULONG_MAX);
	pthread_mutex_unlock(&inflight_lock);
	return found;
}

/* Whether the creation registered as seq (passed as a pointer) was
 * cancelled. */
static bool
inflight_cancelled(void *seqp)
{
	unsigned long seq = *(unsigned long *)seqp;
	bool c = false;

	pthread_mutex_lock(&inflight_lock);
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (inflight[i].seq == seq && inflight[i].id[0])
			c = inflight[i].cancel;
	pthread_mutex_unlock(&inflight_lock);
	return c;
}

/* Cancel the creations of id that began before the delete seq, and wait
 * (bounded) until they have removed their temp files and ended. */
static void
inflight_cancel_wait(const char *id, unsigned long seq)
{
	struct timespec until = inflight_deadline();
	bool found = false;

	pthread_mutex_lock(&inflight_lock);
	for (size_t i = 0; i < INFLIGHT_MAX; i++)
		if (!inflight[i].deleting && inflight[i].seq < seq &&
		    !strcmp(inflight[i].id, id))
			inflight[i].cancel = found = true;
	if (found)
		log_info("cancelling the creation of volume_id=%s", id);
	while (inflight_find_locked(id, false, seq))
		if (pthread_cond_timedwait(&inflight_done, &inflight_lock, &until) == ETIMEDOUT)
			break;
	pthread_mutex_unlock(&inflight_lock);
}

/* "[.]<prefix>-<uuid>.raw[.tmp]" → uuid (as written: lower case), or
 * false. */
static bool
parse_name(enum volume_kind k, const char *n, bool tmp, char id[NQ_UUID_LEN + 1])
{
	char want[80], got[NQ_UUID_LEN + 1];

	volume_name(k, "00000000-0000-0000-0000-000000000000", want, sizeof want, tmp);
	if (strlen(n) != strlen(want))
		return false;
	size_t off = strlen(prefix(k)) + 1 + tmp;
	if (strncmp(n, want, off) || strcmp(n + off + NQ_UUID_LEN, want + off + NQ_UUID_LEN))
		return false;
	memcpy(got, n + off, NQ_UUID_LEN);
	got[NQ_UUID_LEN] = '\0';
	return validate_uuid("volume_id", got, id, NULL) == 0 && !strcmp(id, got);
}

/* Remove stale temp files of interrupted clones in the volume dir. */
static void
sweep_stale_tmp(enum volume_kind k, int dfd, const char *backend_id)
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
				 "backend_id=%s volume_id=%s", backend_id, id);
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

bool
volume_conn_broken(int r)
{
	switch (-r) {
	case EIO:          /* FUSE bridge: the SMB session failed */
	case ENOTCONN:     /* FUSE bridge gone, or the session dropped */
	case ECONNRESET:
	case ECONNABORTED:
	case ECONNREFUSED:
	case EPIPE:
	case ETIMEDOUT:
	case EHOSTDOWN:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ESHUTDOWN:
		return true;
	default:
		return false;
	}
}

static int
io_error(enum volume_kind k, struct nq_error *err, int r, const char *what)
{
	if (r == -ENOSPC || r == -EDQUOT)
		return nq_error_setr(err, r, "no_space", NULL,
			"the backend ran out of space while %s", what);
	if (r == -EACCES || r == -EPERM || r == -EROFS)
		return nq_error_setr(err, r, k == VOLUME_SMB ? "smb_not_writable" : "not_writable",
			NULL, "the %s refused a write while %s (%s)",
			k == VOLUME_SMB ? "share" : "backend directory", what, strerror(-r));
	if (k == VOLUME_SMB && volume_conn_broken(r))
		return nq_error_setr(err, r, "smb_unreachable", NULL,
			"the connection to the SMB server broke while %s (%s); check that "
			"the server is up and reachable", what, strerror(-r));
	return nq_error_setr(err, r, "io_error", NULL, "%s failed: %s", what, strerror(-r));
}

static int
fill_clone(struct agent *a, enum volume_kind k, int dst, const char *image, uint64_t *size,
	struct copy_stats *stats, struct nq_error *err)
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
	r = fs_sparse_copy(src, dst, stats);
	if (r < 0)
		return io_error(k, err, r, "copying the base image");
	return 0;
}

int
volumes_create(struct agent *a, enum volume_kind k, const char *backend_id,
	const char *volume_id, const char *image, uint64_t size_bytes,
	struct volume_info *ret, struct nq_error *err)
{
	char dir[PATH_MAX], name[80], tmp[80];
	struct volume_info info = { 0 };
	bool alloc_known = true;
	_cleanup_close_ int dfd = -1, fd = -1;
	unsigned long seq;
	struct stat st;
	int r;

	if (!image && size_bytes == 0)
		return nq_error_set(err, "missing_field", "size_bytes",
			"size_bytes is required when no image is given");
	if (size_bytes > VOLUME_SIZE_MAX)
		return nq_error_set(err, "invalid_field", "size_bytes",
			"size_bytes must be at most %llu", VOLUME_SIZE_MAX);
	if (inflight_begin(volume_id, false, &seq) < 0)
		return nq_error_setr(err, -EBUSY, "busy", NULL,
			"volume %s is being deleted, or too many volume operations are in "
			"progress on this host; retry", volume_id);
	dfd = open_volume_dir(a, k, backend_id, dir, sizeof dir, &alloc_known, err);
	if (dfd < 0) {
		inflight_end(seq);
		return dfd;
	}
	volume_name(k, volume_id, name, sizeof name, false);
	volume_name(k, volume_id, tmp, sizeof tmp, true);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		r = nq_error_setr(err, -EEXIST, "volume_exists", "volume_id",
			"volume %s already exists on this backend", volume_id);
		goto done;
	}
	sweep_stale_tmp(k, dfd, backend_id);
	/* A temp file left by an interrupted create is ours to replace. */
	unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = io_error(k, err, negerrno(), "creating the volume file");
		goto done;
	}
	if (image) {
		r = fill_clone(a, k, fd, image, &size_bytes, &info.copy, err);
		if (r < 0)
			goto fail;
	}
	/* Test pause point: the data is in the temp file, nothing final yet. */
	debug_gate("clone", inflight_cancelled, &seq);
	if (inflight_cancelled(&seq)) {
		r = nq_error_setr(err, -ECANCELED, "cancelled", NULL,
			"the creation of volume %s was cancelled by a delete", volume_id);
		goto fail;
	}
	if (fstat(fd, &st) < 0 || ((uint64_t)st.st_size < size_bytes &&
				   ftruncate(fd, (off_t)size_bytes) < 0)) {
		r = io_error(k, err, negerrno(), "sizing the volume file");
		goto fail;
	}
	if (fsync(fd) < 0) {
		r = io_error(k, err, negerrno(), "flushing the volume file");
		goto fail;
	}
	/* SMB servers refuse to rename a file that is still open. */
	if (close(TAKE_FD(fd)) < 0) {
		r = io_error(k, err, negerrno(), "closing the volume file");
		goto fail;
	}
	if (renameat(dfd, tmp, dfd, name) < 0) {
		r = io_error(k, err, negerrno(), "renaming the volume file into place");
		goto fail;
	}
	fsync(dfd);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		r = io_error(k, err, negerrno(), "reading the volume's size");
		goto done;
	}
	snprintf(info.path, sizeof info.path, "%s/%s", dir, name);
	info.size_bytes = (uint64_t)st.st_size;
	info.allocated_bytes = allocated(&st, alloc_known);
	log_info("volume created kind=%s backend_id=%s volume_id=%s image=%s size=%llu "
		 "data_written=%llu", volume_kind_name(k), backend_id, volume_id,
		image ? image : "-", (unsigned long long)info.size_bytes,
		(unsigned long long)info.copy.bytes_written);
	*ret = info;
	r = 0;
	goto done;
fail:
	/* SMB servers refuse to delete a file that is still open. */
	if (fd >= 0)
		close(TAKE_FD(fd));
	unlinkat(dfd, tmp, 0);
done:
	inflight_end(seq);
	release_volume_dir(a, k, backend_id);
	return r;
}

int
volumes_list(struct agent *a, enum volume_kind k, const char *backend_id, json_t **ret,
	struct nq_error *err)
{
	char dir[PATH_MAX];
	bool alloc_known = true;
	_cleanup_close_ int dfd = open_volume_dir(a, k, backend_id, dir, sizeof dir,
		&alloc_known, err);
	json_t *arr;
	DIR *d;
	struct dirent *de;
	int r;

	if (dfd < 0)
		return dfd;
	r = fs_opendir(dfd, &d);
	if (r < 0) {
		release_volume_dir(a, k, backend_id);
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
		json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:o}",
			"volume_id", id, "path", path, "size_bytes", (json_int_t)st.st_size,
			"allocated_bytes", allocated_json(allocated(&st, alloc_known))));
	}
	closedir(d);
	release_volume_dir(a, k, backend_id);
	if (!arr)
		return -ENOMEM;
	*ret = arr;
	return 0;
}

int
volumes_delete(struct agent *a, enum volume_kind k, const char *backend_id,
	const char *volume_id, struct nq_error *err)
{
	char dir[PATH_MAX], name[80], tmp[80];
	_cleanup_close_ int dfd = -1;
	unsigned long seq;
	int r = 0;

	/* Registered before anything can block, so that a creation arriving
	 * later waits for us instead of being cancelled by us. */
	if (inflight_begin(volume_id, true, &seq) < 0)
		return nq_error_setr(err, -EBUSY, "busy", NULL,
			"too many volume operations are in progress on this host; retry");
	dfd = open_volume_dir(a, k, backend_id, dir, sizeof dir, NULL, err);
	if (dfd < 0) {
		inflight_end(seq);
		return dfd;
	}
	/* A creation in progress is cancelled first: it must not rename its
	 * file into place after we have deleted. */
	inflight_cancel_wait(volume_id, seq);
	volume_name(k, volume_id, name, sizeof name, false);
	volume_name(k, volume_id, tmp, sizeof tmp, true);
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		r = io_error(k, err, negerrno(), "deleting the volume file");
	unlinkat(dfd, tmp, 0);
	if (r == 0) {
		fsync(dfd);
		log_info("volume deleted kind=%s backend_id=%s volume_id=%s",
			volume_kind_name(k), backend_id, volume_id);
	}
	inflight_end(seq);
	release_volume_dir(a, k, backend_id);
	return r;
}

int
volumes_pin_rootfs(struct agent *a, enum volume_kind k, const char *backend_id,
	const char *volume_id, char *ret_path, size_t pathsz, struct nq_error *err)
{
	char dir[PATH_MAX], name[80];
	_cleanup_close_ int dfd = open_volume_dir(a, k, backend_id, dir, sizeof dir, NULL, err);
	struct stat st;

	if (dfd < 0)
		return dfd;
	volume_name(k, volume_id, name, sizeof name, false);
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode)) {
		release_volume_dir(a, k, backend_id);
		return nq_error_setr(err, -ENOENT, "volume_missing", "volume_id",
			"volume %s does not exist on %s backend %s", volume_id,
			volume_kind_name(k), backend_id);
	}
	if ((size_t)snprintf(ret_path, pathsz, "%s/%s", dir, name) >= pathsz) {
		release_volume_dir(a, k, backend_id);
		return nq_error_setr(err, -ENAMETOOLONG, "io_error", NULL, "rootfs path too long");
	}
	return 0;
}

void
volumes_unpin(struct agent *a, enum volume_kind k, const char *backend_id)
{
	release_volume_dir(a, k, backend_id);
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
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "name", de->d_name,
			"size_bytes", (json_int_t)st.st_size,
			"allocated_bytes", (json_int_t)st.st_blocks * 512));
	}
	closedir(d);
	if (!arr)
		return -ENOMEM;
	*ret = arr;
	return 0;
}
