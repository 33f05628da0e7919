/* The localfile storage kind: a backend's volumes live in a directory at
 * or below --local-root (localdirs.c keeps the registry). Nothing is
 * mounted, so nothing is pinned and nothing is lost at restore. */
#include "agent/storage/kind.h"

#include "agent/storage/localdirs.h"

static int
local_open_volume_dir(struct agent *a, const char *backend_id, char *path, size_t pathsz,
	bool *alloc_known, struct nq_error *err)
{
	if (alloc_known)
		*alloc_known = true;
	return localdirs_open(a, backend_id, path, pathsz, err);
}

static void
local_release_volume_dir(struct agent *a, const char *backend_id)
{
	(void)a;
	(void)backend_id;
}

static bool
local_backend_lost(struct agent *a, const char *backend_id)
{
	(void)a;
	(void)backend_id;
	return false;
}

/* A localfile backend may also be the built-in "localfile-default". */
const struct storage_kind_ops storage_kind_localfile = {
	.name = "localfile",
	.file_prefix = "local",
	.not_writable_code = "not_writable",
	.write_target = "backend directory",
	.io_error = NULL,
	.mounted = false,
	.shared = false,
	.check_backend_id = validate_backend_id,
	.open_volume_dir = local_open_volume_dir,
	.release_volume_dir = local_release_volume_dir,
	.capacity = localdirs_capacity,
	.backend_lost = local_backend_lost,
};
