/* Server-side durability for nqrust-smbfs: fsync/fdatasync and O_SYNC
 * writes become SMB2 WRITE requests with SMB2_WRITEFLAG_WRITE_THROUGH.
 *
 * Why this way (docs/smb-durability.md has the measurements):
 * libsmbclient's public API has no flush call, and it opens every file
 * without FILE_WRITE_THROUGH whatever the open flags say. Its own write
 * path is cli_writeall(file->targetcli, file->cli_fd, mode, ...) from
 * Samba's client library (liblibsmb-samba4, loaded with libsmbclient):
 * mode 1 sets the WRITE_THROUGH flag on the SMB2 WRITE. A server must not
 * answer such a write before the data is on stable storage; smbd does it
 * with fsync() of the file (sync_file() under the default "strict sync =
 * yes"), which also covers everything written earlier through any handle.
 * A zero-length write-through WRITE is therefore a whole-file flush on
 * Samba, measured from smbd's own log and strace (one fsync per request).
 *
 * cli_writeall is not in libsmbclient's public header: it is resolved at
 * run time and used only on a libsmbclient whose SMBCFILE layout we know
 * (first members: int cli_fd; struct cli_state *targetcli — Samba 4.13 on,
 * unchanged through 4.22). Anything else disables the mechanism, and the
 * mount refuses to start rather than pretend fsync worked. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/ops_internal.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* NTSTATUS is a uint32_t in Samba's production builds. */
typedef uint32_t nt_status;
typedef nt_status (*cli_writeall_fn)(void *cli, uint16_t fnum, uint16_t mode,
	const uint8_t *buf, off_t offset, size_t size, size_t *pwritten);
typedef int (*map_errno_fn)(nt_status st);

/* The head of libsmbclient's private struct _SMBCFILE (libsmb_internal.h). */
struct smbcfile_head {
	int cli_fd;
	void *targetcli;
};

#define WRITEFLAG_WRITE_THROUGH 1
#define NT_STATUS_IS_ERR(st) (((st)&0xc0000000u) == 0xc0000000u)

static cli_writeall_fn writeall;
static map_errno_fn map_errno;
static char why_not[160];

/* "4.17.12-Debian" -> 4, 17. */
static bool
known_layout(const char *v)
{
	unsigned major = 0, minor = 0;

	if (!v || sscanf(v, "%u.%u", &major, &minor) != 2)
		return false;
	return major == 4 && minor >= 13 && minor <= 22;
}

int
smbfs_durable_init(void)
{
	const char *v = smbc_version();

	if (!known_layout(v)) {
		snprintf(why_not, sizeof why_not,
			"libsmbclient %s is not a version whose flush path is known "
			"(4.13 to 4.22)",
			v ? v : "?");
		return -EOPNOTSUPP;
	}
	writeall = (cli_writeall_fn)dlsym(RTLD_DEFAULT, "cli_writeall");
	map_errno = (map_errno_fn)dlsym(RTLD_DEFAULT, "map_errno_from_nt_status");
	if (!writeall) {
		snprintf(why_not, sizeof why_not,
			"Samba's client library has no cli_writeall");
		return -EOPNOTSUPP;
	}
	return 0;
}

const char *
smbfs_durable_unavailable(void)
{
	return why_not;
}

static int
status_to_errno(nt_status st)
{
	int e;

	if (!NT_STATUS_IS_ERR(st))
		return 0;
	e = map_errno ? map_errno(st) : 0;
	return e > 0 ? -e : -EIO;
}

int
smbfs_write_through(SMBCFILE *f, const void *buf, size_t size, off_t off,
	size_t *ret_written)
{
	const struct smbcfile_head *h = (const struct smbcfile_head *)f;
	size_t written = 0;
	nt_status st;

	if (!writeall)
		return -EIO;
	if (!h || !h->targetcli || h->cli_fd < 0 || h->cli_fd > 0xffff)
		return -EBADF;
	st = writeall(h->targetcli, (uint16_t)h->cli_fd, WRITEFLAG_WRITE_THROUGH,
		(const uint8_t *)buf, off, size, &written);
	if (NT_STATUS_IS_ERR(st))
		return status_to_errno(st);
	if (ret_written)
		*ret_written = written;
	return 0;
}

int
smbfs_flush_file(SMBCFILE *f)
{
	static const uint8_t none[1];

	return smbfs_write_through(f, none, 0, 0, NULL);
}
