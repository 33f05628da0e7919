#include "agent/mounts/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/record_store.h"

#define BACKENDS_DIR "backends"

static int
dirfd_backends(struct agent *a)
{
	return fs_mkdir_beneath(a->state_dirfd, BACKENDS_DIR, 0700);
}

int
store_backend_save(struct agent *a, const struct stored_backend *b)
{
	_cleanup_close_ int dfd = dirfd_backends(a);
	char opts[NQ_OPTS_MAX + 1] = "";

	if (dfd < 0)
		return dfd;
	mount_opts_join(&b->spec.opts, opts, sizeof opts);
	return record_store_save(dfd, b->id,
		json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
		"backend_id", b->id, "server", b->spec.server, "share", b->spec.share,
		"username", b->spec.username, "domain", b->spec.domain,
		"smb_version", b->spec.version, "mount_options", opts,
		"subdir", b->subdir, "mount_base", b->mount_base,
		"mount_point", b->mount_point, "driver", b->driver));
}

int
store_backend_remove(struct agent *a, const char *id)
{
	_cleanup_close_ int dfd = dirfd_backends(a);

	if (dfd < 0)
		return dfd;
	return record_store_remove(dfd, id);
}

static const char *
str(json_t *j, const char *k)
{
	const char *s = json_string_value(json_object_get(j, k));
	return s ? s : "";
}

static int
parse_record(json_t *j, struct stored_backend *b, struct nq_error *err)
{
	char uuid[NQ_UUID_LEN + 1];
	int r;

	if ((r = validate_uuid("backend_id", str(j, "backend_id"), uuid, err)) < 0 ||
	    (r = validate_server("server", str(j, "server"), b->spec.server,
		     sizeof b->spec.server, err)) < 0 ||
	    (r = validate_share("share", str(j, "share"), err)) < 0 ||
	    (r = validate_smb_version("smb_version", str(j, "smb_version"), err)) < 0 ||
	    (r = validate_subdir("subdir", str(j, "subdir"), b->subdir,
		     sizeof b->subdir, err)) < 0 ||
	    (r = validate_mount_options("mount_options", str(j, "mount_options"),
		     &b->spec.opts, err)) < 0)
		return r;
	if (*str(j, "username") && validate_username("username", str(j, "username"), err) < 0)
		return -EINVAL;
	if (*str(j, "domain") && validate_domain("domain", str(j, "domain"), err) < 0)
		return -EINVAL;
	snprintf(b->id, sizeof b->id, "%s", uuid);
	snprintf(b->spec.share, sizeof b->spec.share, "%s", str(j, "share"));
	snprintf(b->spec.username, sizeof b->spec.username, "%s", str(j, "username"));
	snprintf(b->spec.domain, sizeof b->spec.domain, "%s", str(j, "domain"));
	snprintf(b->spec.version, sizeof b->spec.version, "%s",
		*str(j, "smb_version") ? str(j, "smb_version") : "default");
	snprintf(b->mount_base, sizeof b->mount_base, "%s", str(j, "mount_base"));
	snprintf(b->mount_point, sizeof b->mount_point, "%s", str(j, "mount_point"));
	snprintf(b->driver, sizeof b->driver, "%s", str(j, "driver"));
	return 0;
}

struct load_ctx {
	struct agent *a;
	void (*cb)(struct agent *a, struct stored_backend *b);
};

static int
valid_id(const char *id)
{
	char uuid[NQ_UUID_LEN + 1];

	return validate_uuid("backend_id", id, uuid, NULL);
}

static int
load_one(void *ud, const char *id, json_t *j, struct nq_error *err)
{
	struct load_ctx *ctx = ud;
	struct stored_backend *b;
	int r;

	(void)id;
	if (!ctx->a->mounts)
		return nq_error_set(err, "internal_error", NULL, "no mount table");
	b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	r = parse_record(j, b, err);
	if (r >= 0)
		ctx->cb(ctx->a, b); /* takes b->spec */
	else
		smb_mount_spec_release(&b->spec);
	free(b);
	return r;
}

int
store_backend_load_all(struct agent *a, void (*cb)(struct agent *a, struct stored_backend *b))
{
	_cleanup_close_ int dfd = dirfd_backends(a);
	struct load_ctx ctx = { .a = a, .cb = cb };
	const struct record_load o = {
		.what = "backend", .valid_id = valid_id, .load = load_one, .ud = &ctx,
	};

	if (dfd < 0)
		return dfd;
	return record_store_load_all(dfd, &o);
}
