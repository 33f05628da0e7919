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

/* The SMB fields as the field table writes them, plus what only the
 * agent knows: its id, where it is mounted, by which driver. */
int
store_backend_save(struct agent *a, const struct stored_backend *b)
{
	_cleanup_close_ int dfd = dirfd_backends(a);
	struct smb_fields f;
	json_t *o;

	if (dfd < 0)
		return dfd;
	smb_backend_to_fields(&b->b, &f);
	o = smb_fields_to_json(&f, SMB_F_AGENT, false);
	if (!o || json_object_set_new(o, "backend_id", json_string(b->b.id)) < 0 ||
		json_object_set_new(o, "mount_point", json_string(b->mount_point)) < 0 ||
		json_object_set_new(o, "driver", json_string(b->driver)) < 0) {
		json_decref(o);
		return -ENOMEM;
	}
	return record_store_save(dfd, b->b.id, o);
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

/* Re-validated on load like a request: through the field table. */
static int
parse_record(json_t *j, struct stored_backend *b, struct nq_error *err)
{
	static const char *const own[] = { "backend_id", "mount_point", "driver", NULL };
	struct smb_fields f = { 0 };
	int r;

	if ((r = smb_fields_from_json(j, "", SMB_F_AGENT, own, &f, NULL, err)) < 0 ||
		(r = smb_fields_check(&f, "", err)) < 0 ||
		(r = smb_backend_from_fields(&f, str(j, "backend_id"), &b->b, err)) < 0)
		return r;
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
		smb_mount_spec_release(&b->b.spec);
	free(b);
	return r;
}

int
store_backend_load_all(struct agent *a,
	void (*cb)(struct agent *a, struct stored_backend *b))
{
	_cleanup_close_ int dfd = dirfd_backends(a);
	struct load_ctx ctx = { .a = a, .cb = cb };
	const struct record_load o = {
		.what = "backend",
		.valid_id = valid_id,
		.load = load_one,
		.ud = &ctx,
	};

	if (dfd < 0)
		return dfd;
	return record_store_load_all(dfd, &o);
}
