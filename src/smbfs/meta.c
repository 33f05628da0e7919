/* nqrust-smbfs metadata operations: statfs, utimens, chmod, chown. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/ops_internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>

struct statvfs_args {
	const char *url;
	struct statvfs *sv;
};

static int
statvfs_attempt(struct smbfs *fs, void *arg)
{
	struct statvfs_args *a = arg;

	return smbc_getFunctionStatVFS(fs->ctx)(fs->ctx, (char *)a->url, a->sv) < 0
		       ? smb_err()
		       : 0;
}

int
smbfs_op_statfs(const char *path, struct statvfs *out)
{
	struct smbfs *fs = fs_get();
	struct statvfs sv;
	unsigned long long unit, total, bfree, avail;
	char *url;
	int r;

	(void)path;
	/* Always ask about the share root: statvfs opens its argument. */
	url = smbfs_url(fs, "/");
	if (!url)
		return -errno;
	memset(&sv, 0, sizeof(sv));
	r = smbfs_call(fs, statvfs_attempt, &(struct statvfs_args){ url, &sv });
	free(url);
	if (r < 0)
		return r;
	/* libsmbclient's units: bytes = blocks * f_bsize (bytes per sector)
	 * * f_frsize (sectors per allocation unit). */
	unit = (unsigned long long)sv.f_bsize * (sv.f_frsize ? sv.f_frsize : 1);
	if (unit == 0)
		unit = 1;
	total = sv.f_blocks * unit;
	bfree = sv.f_bfree * unit;
	avail = sv.f_bavail * unit;
	memset(out, 0, sizeof(*out));
	out->f_bsize = 4096;
	out->f_frsize = 4096;
	out->f_blocks = total / 4096;
	out->f_bfree = bfree / 4096;
	out->f_bavail = avail / 4096;
	out->f_files = sv.f_files;
	out->f_ffree = sv.f_ffree;
	out->f_favail = sv.f_ffree;
	out->f_namemax = 255;
	return 0;
}

static void
ts_to_tv(const struct timespec *ts, struct timeval *tv)
{
	tv->tv_sec = ts->tv_sec;
	tv->tv_usec = ts->tv_nsec / 1000;
}

struct utimens_args {
	const char *url;
	const struct timespec *tv;
};

static int
utimens_attempt(struct smbfs *fs, void *arg)
{
	struct utimens_args *a = arg;
	struct timeval t[2], now;
	struct stat st;

	gettimeofday(&now, NULL);
	if (a->tv && (a->tv[0].tv_nsec == UTIME_OMIT || a->tv[1].tv_nsec == UTIME_OMIT) &&
		smbc_getFunctionStat(fs->ctx)(fs->ctx, a->url, &st) < 0)
		return smb_err();
	for (int i = 0; i < 2; i++) {
		if (!a->tv || a->tv[i].tv_nsec == UTIME_NOW)
			t[i] = now;
		else if (a->tv[i].tv_nsec == UTIME_OMIT)
			ts_to_tv(i == 0 ? &st.st_atim : &st.st_mtim, &t[i]);
		else
			ts_to_tv(&a->tv[i], &t[i]);
	}
	return smbc_getFunctionUtimes(fs->ctx)(fs->ctx, a->url, t) < 0 ? smb_err() : 0;
}

int
smbfs_op_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct smbfs *fs = fs_get();
	char *url;
	int r;

	(void)fi;
	if (fs->view.ro)
		return -EROFS;
	url = smbfs_url(fs, path);
	if (!url)
		return -errno;
	r = smbfs_call_update(fs, utimens_attempt, &(struct utimens_args){ url, tv });
	free(url);
	return r;
}

/* Ownership and permissions are presentation options (uid=, gid=,
 * file_mode=, dir_mode=): accept and ignore changes like mount.cifs does
 * without unix extensions. */
int
smbfs_op_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	(void)path;
	(void)mode;
	(void)fi;
	return fs_get()->view.ro ? -EROFS : 0;
}

int
smbfs_op_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	(void)path;
	(void)uid;
	(void)gid;
	(void)fi;
	return fs_get()->view.ro ? -EROFS : 0;
}
