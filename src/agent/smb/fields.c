/* The agent's SMB backend <-> the field table (common/smb_fields.h). The
 * field table validated and canonicalised every value; here the values
 * take the agent's types. */
#include "agent/smb/driver.h"

#include <stdio.h>
#include <string.h>

int
smb_backend_from_fields(const struct smb_fields *f, const char *id,
	struct smb_backend *ret, struct nq_error *err)
{
	struct smb_backend b = { 0 };
	int r;

	r = validate_uuid("backend_id", id, b.id, err);
	if (r < 0)
		return r;
	r = validate_mount_options("mount_options", f->mount_options, &b.spec.opts, err);
	if (r < 0)
		return r;
	snprintf(b.spec.server, sizeof b.spec.server, "%s", f->server);
	snprintf(b.spec.share, sizeof b.spec.share, "%s", f->share);
	snprintf(b.spec.username, sizeof b.spec.username, "%s", f->username);
	snprintf(b.spec.domain, sizeof b.spec.domain, "%s", f->domain);
	snprintf(b.spec.version, sizeof b.spec.version, "%s",
		f->smb_version[0] ? f->smb_version : "default");
	snprintf(b.subdir, sizeof b.subdir, "%s", f->subdir);
	snprintf(b.mount_base, sizeof b.mount_base, "%s", f->mount_base);
	*ret = b;
	return 0;
}

void
smb_backend_to_fields(const struct smb_backend *b, struct smb_fields *ret)
{
	struct smb_fields f = { 0 };

	snprintf(f.server, sizeof f.server, "%s", b->spec.server);
	snprintf(f.share, sizeof f.share, "%s", b->spec.share);
	snprintf(f.username, sizeof f.username, "%s", b->spec.username);
	snprintf(f.domain, sizeof f.domain, "%s", b->spec.domain);
	snprintf(f.smb_version, sizeof f.smb_version, "%s",
		strcmp(b->spec.version, "default") == 0 ? "" : b->spec.version);
	snprintf(f.subdir, sizeof f.subdir, "%s", b->subdir);
	if (mount_opts_join(&b->spec.opts, f.mount_options, sizeof f.mount_options) < 0)
		f.mount_options[0] = '\0';
	snprintf(f.mount_base, sizeof f.mount_base, "%s", b->mount_base);
	*ret = f;
}

int
smb_backend_copy(const struct smb_backend *src, struct smb_backend *dst)
{
	struct smb_backend b = *src;
	int r = smb_mount_spec_copy(&src->spec, &b.spec);

	if (r < 0)
		return r;
	*dst = b;
	return 0;
}

void
smb_backend_release(struct smb_backend *b)
{
	if (b)
		smb_mount_spec_release(&b->spec);
}
