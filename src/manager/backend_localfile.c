/* Backend kind "localfile": volumes as sparse files in a directory.
 *
 * Interim: the agent has no localfile storage route yet, so the manager
 * serves this kind itself, confined to its own localfile root
 * (--volumes-dir, default <state-dir>/volumes). Capacity is statvfs of the
 * directory. When the agent grows a localfile storage route, only this file
 * changes. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "backend.h"
#include "fsutil.h"
#include "validate.h"

struct localfile_cfg {
	char path[PATH_MAX]; /* "" means env->localfile_root */
};

static const char *
dir_of(const struct backend_env *env, const struct localfile_cfg *c)
{
	return c->path[0] ? c->path : env->localfile_root;
}

static int
lf_parse(const struct backend_env *env, enum parse_mode mode, json_t *config,
	const void *base, void *ret_cfg, struct secret **ret_secret,
	struct nq_error *err)
{
	struct localfile_cfg c = { 0 };
	const char *key;
	json_t *val;
	int r;

	*ret_secret = NULL;
	(void)mode;
	if (base)
		c = *(const struct localfile_cfg *)base;
	if (config && !json_is_object(config))
		return nq_error_set(err, "invalid_field", "config", "config must be an object");
	json_object_foreach(config, key, val) {
		if (strcmp(key, "path") != 0)
			return nq_error_set(err, "unknown_field", "config.path",
				"unknown field 'config.%.40s'", key);
		if (json_is_null(val)) {
			c.path[0] = '\0';
			continue;
		}
		if (!json_is_string(val))
			return nq_error_set(err, "invalid_field", "config.path",
				"config.path must be a string");
		const char *v = json_string_value(val);
		if (strlen(v) >= sizeof c.path)
			return nq_error_set(err, "invalid_field", "config.path",
				"config.path is too long");
		r = validate_path_under("config.path", v, env->localfile_root, err);
		if (r < 0)
			return r;
		snprintf(c.path, sizeof c.path, "%s",
			strcmp(v, env->localfile_root) == 0 ? "" : v);
	}
	memcpy(ret_cfg, &c, sizeof c);
	return 0;
}

static json_t *
lf_to_json(const struct backend_env *env, const void *cfg)
{
	return json_pack("{s:s}", "path", dir_of(env, cfg));
}

static bool
lf_false(const void *cfg)
{
	(void)cfg;
	return false;
}

static bool
lf_differs(const void *a, const void *b)
{
	return strcmp(((const struct localfile_cfg *)a)->path,
		      ((const struct localfile_cfg *)b)->path) != 0;
}

static bool
lf_creds_differ(const void *a, const void *b)
{
	(void)a, (void)b;
	return false;
}

static int
lf_create(const struct backend_env *env, const char *id, const void *cfg,
	const struct secret *secret, struct nq_error *err)
{
	const char *dir = dir_of(env, cfg);
	struct statvfs sv;
	int r;
	(void)id;

	if (secret)
		return nq_error_set(err, "invalid_field", "config.password",
			"a localfile backend takes no password");
	r = fs_mkdir_p(dir, 0750);
	if (r < 0 || statvfs(dir, &sv) < 0 || access(dir, W_OK) < 0)
		return nq_error_setr(err, r < 0 ? r : negerrno(), "invalid_field",
			"config.path", "the directory cannot be created or written");
	return 0;
}

static int
lf_rotate(const struct backend_env *env, const char *id, const void *cfg,
	const struct secret *secret, struct nq_error *err)
{
	(void)env, (void)id, (void)cfg, (void)secret;
	return nq_error_set(err, "invalid_field", "rotate_password",
		"a localfile backend has no password");
}

static int
lf_reconfigure(const struct backend_env *env, const char *id, const void *old_cfg,
	const void *new_cfg, const struct secret *secret, struct nq_error *err)
{
	(void)old_cfg;
	return lf_create(env, id, new_cfg, secret, err);
}

static int
lf_capacity(const struct backend_env *env, const char *id, const void *cfg,
	bool may_remount, struct capacity *ret, struct nq_error *err)
{
	struct statvfs sv;
	(void)id, (void)may_remount;

	if (statvfs(dir_of(env, cfg), &sv) < 0)
		return nq_error_setr(err, negerrno(), "io_error", NULL,
			"the backend directory is not accessible");
	ret->total_bytes = (uint64_t)sv.f_blocks * sv.f_frsize;
	ret->free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
	ret->used_bytes = ((uint64_t)sv.f_blocks - sv.f_bfree) * sv.f_frsize;
	return 0;
}

static void
volume_name(const char *volume_id, char *buf, size_t sz)
{
	snprintf(buf, sz, "local-%s.raw", volume_id);
}

static int
lf_provision(const struct backend_env *env, const char *id, const void *cfg,
	const char *volume_id, const char *image, uint64_t size_bytes,
	struct volume_info *ret, struct nq_error *err)
{
	const char *dir = dir_of(env, cfg);
	_cleanup_close_ int dfd = -1, fd = -1;
	char name[80];
	struct stat st;
	(void)id;

	if (image)
		return nq_error_set(err, "invalid_field", "image",
			"cloning images onto localfile backends is not supported yet");
	dfd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (dfd < 0)
		return nq_error_setr(err, negerrno(), "io_error", NULL,
			"the backend directory is not accessible");
	volume_name(volume_id, name, sizeof name);
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return nq_error_setr(err, negerrno(), errno == EEXIST ? "volume_exists" : "io_error",
			NULL, "cannot create the volume file");
	if (ftruncate(fd, (off_t)size_bytes) < 0 || fstat(fd, &st) < 0) {
		int r = negerrno();
		unlinkat(dfd, name, 0);
		return nq_error_setr(err, r, r == -ENOSPC || r == -EFBIG ? "no_space" : "io_error",
			NULL, "cannot size the volume file");
	}
	if ((size_t)snprintf(ret->path, sizeof ret->path, "%.4000s/%.80s", dir, name) >=
	    sizeof ret->path) {
		unlinkat(dfd, name, 0);
		return nq_error_setr(err, -ENAMETOOLONG, "io_error", NULL, "path too long");
	}
	ret->size_bytes = (uint64_t)st.st_size;
	ret->allocated_bytes = (uint64_t)st.st_blocks * 512;
	return 0;
}

static int
lf_delete_volume(const struct backend_env *env, const char *id, const void *cfg,
	const char *volume_id, struct nq_error *err)
{
	_cleanup_close_ int dfd = open(dir_of(env, cfg), O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	char name[80];
	(void)id;

	if (dfd < 0)
		return nq_error_setr(err, negerrno(), "io_error", NULL,
			"the backend directory is not accessible");
	volume_name(volume_id, name, sizeof name);
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return nq_error_setr(err, negerrno(), "io_error", NULL,
			"cannot delete the volume file");
	return 0;
}

static int
lf_destroy(const struct backend_env *env, const char *id, const void *cfg,
	struct nq_error *err)
{
	(void)env, (void)id, (void)cfg, (void)err;
	return 0; /* files stay where they are */
}

const struct backend_ops backend_localfile_ops = {
	.kind = "localfile",
	.cfg_size = sizeof(struct localfile_cfg),
	.parse = lf_parse,
	.to_json = lf_to_json,
	.uses_password = lf_false,
	.mount_differs = lf_differs,
	.creds_differ = lf_creds_differ,
	.create = lf_create,
	.rotate_secret = lf_rotate,
	.reconfigure = lf_reconfigure,
	.capacity = lf_capacity,
	.provision_volume = lf_provision,
	.delete_volume = lf_delete_volume,
	.destroy = lf_destroy,
};
