#include "agent/smb/mount.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/random.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"
#include "common/nq_argv.h"
#include "agent/mounts/deadline.h"
#include "agent/mounts/mountinfo.h"
#include "agent/storage/leases.h"

static bool
is_mounted_here(const char *mount_point)
{
	return mountinfo_has_smb(mount_point, NULL) > 0;
}

/* The driver's argv (argv.c), plus --check for a credentials check. */
static int
driver_argv(struct agent *a, enum mount_driver d, const struct smb_mount_spec *s,
	const char *cred_path, const char *mount_point, bool check_only,
	struct nq_argv *ret)
{
	char **v = NULL;
	int r;

	if (d == DRIVER_KERNEL)
		r = smb_kernel_argv(s, a->cfg.mount_cifs_path, cred_path, mount_point, &v);
	else
		r = smb_fuse_argv(s, a->cfg.smbfs_path, cred_path, mount_point,
			a->cfg.probe_timeout, lease_io_deadline_s(a->cfg.lease_seconds),
			&v);
	if (r < 0)
		return r;
	for (char **p = v; *p && r >= 0; p++)
		r = nq_argv_push(ret, *p);
	smb_argv_free(v);
	if (r >= 0 && check_only)
		r = nq_argv_push(ret, "--check");
	return r;
}

static int
run_driver_ex(struct agent *a, enum mount_driver d, const struct smb_mount_spec *s,
	const char *cred_path, const char *mount_point, bool check_only,
	struct nq_error *err)
{
	_cleanup_(nq_argv_release) struct nq_argv argv = { 0 };
	struct spawn_result res = { 0 };
	int r, timeout_ms = (int)a->cfg.probe_timeout * 1000;

	r = driver_argv(a, d, s, cred_path, mount_point, check_only, &argv);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL,
			"cannot build the mount command: %s", strerror(-r));

	struct spawn_opts o = { .argv = nq_argv_get(&argv),
		.timeout_ms = timeout_ms + (d == DRIVER_FUSE ? 2000 : 0) };
	r = spawn_run(&o, &res);
	nq_argv_release(&argv);
	if (r == -ENOENT && d == DRIVER_KERNEL)
		return nq_error_setr(err, -ENODEV, "cifs_unavailable", NULL,
			"mount.cifs is not installed on this host (%s missing); install "
			"cifs-utils or use mount_driver=fuse",
			a->cfg.mount_cifs_path);
	if (r < 0)
		return nq_error_setr(err, r, "smb_mount_failed", NULL,
			"cannot run the %s mount helper: %s",
			d == DRIVER_KERNEL ? "kernel" : "FUSE", strerror(-r));
	if (spawn_ok(&res) && (check_only || is_mounted_here(mount_point))) {
		spawn_result_release(&res);
		return 0;
	}
	if (spawn_ok(&res)) {
		spawn_result_release(&res);
		return nq_error_setr(err, -EIO, "smb_mount_failed", NULL,
			"the mount helper reported success but nothing is mounted at %s",
			mount_point);
	}
	int n = smb_classify_mount_error(s, &res, err);
	log_debug("mount helper failed driver=%s exit=%d errno=%d timed_out=%d code=%s",
		d == DRIVER_KERNEL ? "kernel" : "fuse", res.exit_code, n, res.timed_out,
		err ? err->code : "");
	spawn_result_release(&res);
	return n > 0 ? -n : -EIO;
}

static int
run_driver(struct agent *a, enum mount_driver d, const struct smb_mount_spec *s,
	const char *cred_path, const char *mount_point, struct nq_error *err)
{
	return run_driver_ex(a, d, s, cred_path, mount_point, false, err);
}

int
smb_check_credentials(struct agent *a, const struct smb_mount_spec *s,
	const char *cred_path, const char *mount_point, struct nq_error *err)
{
	return run_driver_ex(a, DRIVER_FUSE, s, cred_path, mount_point, true, err);
}

int
smb_mount_run(struct agent *a, const struct smb_mount_spec *s, const char *cred_path,
	const char *mount_point, bool *kernel_unavailable, enum mount_driver *ret_driver,
	struct nq_error *err)
{
	enum mount_driver d = a->driver;
	int r;

	if (d == DRIVER_AUTO && !*kernel_unavailable) {
		struct nq_error kerr = { 0 };

		r = run_driver(a, DRIVER_KERNEL, s, cred_path, mount_point, &kerr);
		if (r >= 0) {
			*ret_driver = DRIVER_KERNEL;
			return 0;
		}
		if (strcmp(kerr.code, "cifs_unavailable") != 0) {
			if (err)
				*err = kerr;
			return r;
		}
		*kernel_unavailable = true;
		log_warn("kernel has no CIFS support; falling back to the FUSE driver "
			 "(nqrust-smbfs) for this and later mounts mount_point=%s",
			mount_point);
	}
	if (d == DRIVER_AUTO)
		d = DRIVER_FUSE;
	r = run_driver(a, d, s, cred_path, mount_point, err);
	if (r >= 0)
		*ret_driver = d;
	return r;
}

int
smb_unmount_run(struct agent *a, const char *mount_point)
{
	/* -c: no path canonicalization, so no stat of the mount point. A
	 * FUSE mount whose server is away would hold that stat for the
	 * mount's whole grace (smb-durability.md). */
	const char *argv[] = { a->cfg.umount_path, "-c", mount_point, NULL };
	const char *lazy[] = { a->cfg.umount_path, "-c", "-l", mount_point, NULL };
	struct spawn_opts o = { .argv = argv, .timeout_ms = 15000 };
	struct spawn_result res = { 0 };
	int r;

	r = spawn_run(&o, &res);
	if (r >= 0 && !spawn_ok(&res) && is_mounted_here(mount_point)) {
		log_warn("umount failed, detaching lazily mount_point=%s", mount_point);
		spawn_result_release(&res);
		o.argv = lazy;
		r = spawn_run(&o, &res);
	}
	spawn_result_release(&res);
	if (is_mounted_here(mount_point))
		return -EBUSY;
	rmdir(mount_point); /* best effort: an empty dir left behind is harmless */
	return r < 0 ? r : 0;
}

int
smb_timeout_error(const char *unc, const char *what, int r, int timeout_ms,
	struct nq_error *err)
{
	if (r == -ETIMEDOUT)
		return nq_error_setr(err, r, "smb_timeout", NULL,
			"the SMB server %s did not answer %s within %d s; check that the "
			"server is up and reachable",
			unc, what, timeout_ms / 1000);
	if (r == -EBUSY)
		return nq_error_setr(err, r, "smb_timeout", NULL,
			"the SMB server %s has not answered an earlier request on this "
			"mount yet, so %s was not sent; check that the server is up and "
			"reachable",
			unc, what);
	return nq_error_setr(err, r, "smb_timeout", NULL,
		"too many requests to unresponsive SMB servers are outstanding on "
		"this host; %s on %s was not sent",
		what, unc);
}

struct probe_ctx {
	char mount_point[PATH_MAX];
	char subdir[NQ_SUBDIR_MAX + 1];
	int err_no;
	char step[16];
};

static int
probe_fn(void *arg)
{
	struct probe_ctx *c = arg;
	_cleanup_close_ int mfd = -1, dfd = -1, fd = -1;
	char name[64], data[4096];
	uint64_t rnd = 0;

	snprintf(c->step, sizeof c->step, "open");
	mfd = open(c->mount_point, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (mfd < 0)
		return c->err_no = errno, -c->err_no;
	snprintf(c->step, sizeof c->step, "mkdir");
	if (c->subdir[0]) {
		dfd = fs_mkdir_beneath(mfd, c->subdir, 0700);
		if (dfd < 0)
			return c->err_no = -dfd, dfd;
	} else {
		dfd = TAKE_FD(mfd);
	}
	if (getrandom(&rnd, sizeof rnd, 0) < 0)
		rnd = (uint64_t)getpid();
	snprintf(name, sizeof name, ".nqrust-probe-%016llx", (unsigned long long)rnd);
	snprintf(c->step, sizeof c->step, "create");
	fd = openat(dfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return c->err_no = errno, -c->err_no;
	memset(data, 0x5a, sizeof data);
	snprintf(c->step, sizeof c->step, "write");
	if (pwrite(fd, data, sizeof data, 0) != (ssize_t)sizeof data || fsync(fd) < 0) {
		c->err_no = errno ? errno : EIO;
		close(TAKE_FD(fd));
		unlinkat(dfd, name, 0);
		return -c->err_no;
	}
	/* SMB servers refuse to delete a file that is still open. */
	snprintf(c->step, sizeof c->step, "close");
	if (close(TAKE_FD(fd)) < 0)
		return c->err_no = errno, -c->err_no;
	snprintf(c->step, sizeof c->step, "delete");
	if (unlinkat(dfd, name, 0) < 0)
		return c->err_no = errno, -c->err_no;
	return 0;
}

int
smb_probe_writable(const struct smb_mount_spec *s, const char *mount_point,
	const char *subdir, int timeout_ms, struct nq_error *err)
{
	struct probe_ctx c = { 0 };
	char unc[600];
	int r;

	snprintf(c.mount_point, sizeof c.mount_point, "%s", mount_point);
	snprintf(c.subdir, sizeof c.subdir, "%s", subdir ? subdir : "");
	smb_unc(s, unc, sizeof unc);
	r = deadline_run(mount_point, probe_fn, &c, sizeof c, timeout_ms);
	if (r == -ETIMEDOUT || r == -EBUSY || r == -EAGAIN)
		return smb_timeout_error(unc, "a test write", r, timeout_ms, err);
	if (r == 0)
		return 0;
	if (r == -EACCES || r == -EPERM || r == -EROFS)
		return nq_error_setr(err, r, "smb_not_writable", NULL,
			"the share %s is mounted but not writable (%s failed: %s); grant "
			"the backend's user write access to the share%s%s",
			unc, c.step, strerror(-r),
			subdir && *subdir ? " and subdirectory " : "",
			subdir ? subdir : "");
	if (smb_conn_broken(r))
		return nq_error_setr(err, r, "smb_unreachable", NULL,
			"the SMB server for %s stopped answering during a test write "
			"(%s: %s); check that it is up and reachable",
			unc, c.step, strerror(-r));
	return nq_error_setr(err, r, "smb_mount_failed", NULL,
		"the test write on %s failed (%s: %s)", unc, c.step, strerror(-r));
}

struct statvfs_ctx {
	char dir[PATH_MAX];
	struct capacity cap;
};

static int
statvfs_fn(void *arg)
{
	struct statvfs_ctx *c = arg;
	struct statvfs sv;

	if (statvfs(c->dir, &sv) < 0)
		return negerrno();
	uint64_t fr = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
	c->cap.total_bytes = (uint64_t)sv.f_blocks * fr;
	c->cap.free_bytes = (uint64_t)sv.f_bavail * fr;
	/* Used is what we cannot write (mounts.h): an SMB server reports only
	 * the space free to its caller, so this is the one figure every kind
	 * can give alike. */
	c->cap.used_bytes = c->cap.total_bytes > c->cap.free_bytes
				    ? c->cap.total_bytes - c->cap.free_bytes
				    : 0;
	return 0;
}

int
smb_capacity(const char *mount_point, const char *dir, int timeout_ms, struct capacity *ret)
{
	struct statvfs_ctx c = { 0 };
	int r;

	snprintf(c.dir, sizeof c.dir, "%s", dir);
	r = deadline_run(mount_point, statvfs_fn, &c, sizeof c, timeout_ms);
	if (r < 0)
		return r;
	*ret = c.cap;
	return 0;
}

const struct mount_ops smb_mount_ops = {
	.mount = smb_mount_run,
	.unmount = smb_unmount_run,
	.check_credentials = smb_check_credentials,
	.probe_writable = smb_probe_writable,
	.is_mounted = mountinfo_has_smb,
};
