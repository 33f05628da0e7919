#include "agent/storage/volumes_copy.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/debug_gate.h"
#include "common/log.h"
#include "agent/storage/inflight.h"
#include "agent/storage/leases.h"
#include "agent/storage/volumes_internal.h"

/* The source volume, open read-only and flushed. */
static int
open_source(const struct storage_kind_ops *k, int dfd, const char *source_id,
	struct stat *st, struct nq_error *err)
{
	char name[80];
	int fd;

	volumes_file_name(k, source_id, name, sizeof name, false);
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
		if (fd >= 0)
			close(fd);
		return nq_error_setr(err, -ENOENT, "volume_missing", "source_volume_id",
			"volume %s does not exist on %s backend", source_id, k->name);
	}
	/* Dirty pages of this host's cache must reach the server before a
	 * server-side copy reads the file there. */
	if (fsync(fd) < 0) {
		int r = volumes_io_error(k, err, negerrno(), "flushing the source volume");
		close(fd);
		return r;
	}
	return fd;
}

static int
check_target(const struct storage_kind_ops *k, int dfd, const char *name,
	const char *volume_id, bool replace, struct nq_error *err)
{
	struct stat st;
	bool exists = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;

	if (!replace && exists)
		return nq_error_setr(err, -EEXIST, "volume_exists", "volume_id",
			"volume %s already exists on this backend", volume_id);
	if (replace && !exists)
		return nq_error_setr(err, -ENOENT, "volume_missing", "volume_id",
			"volume %s does not exist on %s backend", volume_id, k->name);
	return 0;
}

/* In the open volume dir: fill the target's temp file from the source,
 * then rename it into place. lease_id: the lease a revert holds (NULL for
 * a copy); lost meanwhile, the disk is left as it was. */
static int
copy_in(struct agent *a, const struct storage_kind_ops *k, int dfd, const char *dir,
	const char *volume_id, const char *source_id, bool replace, const char *lease_id,
	unsigned long seq, struct volume_info *ret, struct nq_error *err)
{
	char name[80], tmp[80];
	struct volume_info info = { 0 };
	_cleanup_close_ int src = -1, fd = -1;
	struct stat st;
	int r;

	volumes_file_name(k, volume_id, name, sizeof name, false);
	volumes_file_name(k, volume_id, tmp, sizeof tmp, true);
	r = check_target(k, dfd, name, volume_id, replace, err);
	if (r < 0)
		return r;
	src = open_source(k, dfd, source_id, &st, err);
	if (src < 0)
		return src;
	unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return volumes_io_error(k, err, negerrno(), "creating the volume file");
	r = fs_sparse_copy(src, fd, &info.copy);
	if (r < 0)
		r = volumes_io_error(k, err, r, "copying the volume");
	debug_gate("volume-copy", inflight_cancelled, &seq);
	if (r >= 0 && inflight_cancelled(&seq))
		r = nq_error_setr(err, -ECANCELED, "cancelled", NULL,
			"the copy into volume %s was cancelled by a delete", volume_id);
	if (r >= 0 && lease_id && leases_fenced(a, lease_id))
		r = nq_error_setr(err, -ESTALE, "volume_leased", "volume_id",
			"the lease of volume %s was lost during the revert (its renewals "
			"failed); the volume is unchanged",
			volume_id);
	return volumes_settle(k, dfd, &fd, tmp, name, dir, (uint64_t)st.st_size, r, &info,
		ret, err);
}

static int
revert_lease(struct agent *a, const struct storage_kind_ops *k, const char *dir,
	const char *volume_id, struct nq_error *err)
{
	char name[80], path[PATH_MAX];

	volumes_file_name(k, volume_id, name, sizeof name, false);
	if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
		return nq_error_setr(err, -ENAMETOOLONG, "io_error", NULL,
			"volume path too long");
	return leases_acquire(a, k, volume_id, volume_id, path, err);
}

int
volumes_copy(struct agent *a, const struct storage_kind_ops *k, const char *backend_id,
	const char *volume_id, const char *source_id, bool replace,
	struct volume_info *ret, struct nq_error *err)
{
	char dir[PATH_MAX];
	struct volume_info info;
	bool alloc_known = true;
	_cleanup_close_ int dfd = -1;
	unsigned long seq;
	int r;

	if (!strcmp(volume_id, source_id))
		return nq_error_set(err, "invalid_field", "source_volume_id",
			"source_volume_id must differ from volume_id");
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
	/* A revert writes the VM's disk: like a VM start, it holds the
	 * volume's lease (under the volume's own id) so that no other host
	 * runs a VM on it meanwhile, and no host reverts a disk another runs. */
	if (replace && (r = revert_lease(a, k, dir, volume_id, err)) < 0) {
		inflight_end(seq);
		k->release_volume_dir(a, backend_id);
		return r;
	}
	r = copy_in(a, k, dfd, dir, volume_id, source_id, replace,
		replace ? volume_id : NULL, seq, &info, err);
	if (replace) {
		leases_release(a, volume_id);
		leases_forget(a, volume_id);
	}
	inflight_end(seq);
	k->release_volume_dir(a, backend_id);
	if (r < 0)
		return r;
	if (!alloc_known)
		info.allocated_bytes = -1;
	log_info("volume %s kind=%s backend_id=%s volume_id=%s source=%s size=%llu "
		 "data_copied=%llu method=%s",
		replace ? "reverted" : "copied", k->name, backend_id, volume_id, source_id,
		(unsigned long long)info.size_bytes,
		(unsigned long long)info.copy.bytes_written,
		copy_method_name(info.copy.method));
	*ret = info;
	return 0;
}
