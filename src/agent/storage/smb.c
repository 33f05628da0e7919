/* The smb storage kind: a backend's volumes live in its subdir of a share
 * the mount table (mounts/) keeps mounted through the smb/ drivers. */
#include "agent/storage/kind.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"
#include "agent/mounts/mounts.h"
#include "agent/smb/driver.h"

static int
smb_io_error(int r, const char *what, struct nq_error *err)
{
	if (!smb_conn_broken(r))
		return 0;
	return nq_error_setr(err, r, "smb_unreachable", NULL,
		"the connection to the SMB server broke while %s (%s); check that "
		"the server is up and reachable",
		what, strerror(-r));
}

static int
smb_open_volume_dir(struct agent *a, const char *backend_id, char *path, size_t pathsz,
	bool *alloc_known, struct nq_error *err)
{
	enum mount_driver drv = DRIVER_KERNEL;
	int r, fd;

	r = mounts_pin_volume_dir(a, backend_id, path, pathsz, &drv, err);
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		r = negerrno();
		mounts_unpin(a, backend_id);
		if (smb_io_error(r, "opening the backend's volume directory", err) < 0)
			return r;
		return nq_error_setr(err, r, "io_error", NULL,
			"cannot open the backend's volume directory: %s", strerror(-r));
	}
	/* libsmbclient does not expose the server's allocation size, so
	 * st_blocks through the FUSE bridge is derived from the size. */
	if (alloc_known)
		*alloc_known = drv != DRIVER_FUSE;
	return fd;
}

const struct storage_kind_ops storage_kind_smb = {
	.name = "smb",
	.file_prefix = "smb",
	.not_writable_code = "smb_not_writable",
	.write_target = "share",
	.io_error = smb_io_error,
	.mounted = true,
	.shared = true,
	.check_backend_id = validate_uuid, /* the manager's UUIDs */
	.open_volume_dir = smb_open_volume_dir,
	.release_volume_dir = mounts_unpin,
	.capacity = mounts_capacity,
	.backend_lost = mounts_backend_lost,
};
