/* The SMB mount routes: attach a backend (mount or share a mount), list
 * the mount table, detach. parse_mount re-validates every field of the
 * SMB backend the manager sends. */
#include <string.h>

#include "common/http_server.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/validate.h"
#include "agent/api/api.h"
#include "agent/mounts/mounts.h"
#include "agent/smb/mount.h"

/* The mount base: the agent's default when none is given; always a
 * directory below the agent's mount root. */
static int
mount_base_of(struct agent *a, struct smb_fields *f, struct nq_error *err)
{
	int r;

	if (!f->mount_base[0]) {
		r = agent_default_mount_base(a, f->mount_base, sizeof f->mount_base);
		if (r < 0)
			return nq_error_setr(err, r, "internal_error", NULL,
				"mount base too long");
	}
	r = validate_path_under("mount_base", f->mount_base, a->cfg.mount_root, err);
	if (r < 0)
		return r;
	if (!strcmp(f->mount_base, a->cfg.mount_root))
		return nq_error_set(err, "invalid_field", "mount_base",
			"mount_base must be a directory below %s, not the root itself",
			a->cfg.mount_root);
	return 0;
}

/* Parse and validate a mount request body: every SMB field through the
 * common field table, then what only the agent knows (its mount root). */
static int
parse_mount(struct agent *a, json_t *body, struct smb_backend *ret, struct nq_error *err)
{
	static const char *const own[] = { "backend_id", NULL };
	struct smb_fields f = { 0 };
	const char *id;
	int r;

	if ((r = json_req_string(body, "backend_id", &id, err)) < 0 ||
		(r = smb_fields_from_json(body, "", SMB_F_AGENT, own, &f, NULL, err)) < 0 ||
		(r = smb_fields_check(&f, "", err)) < 0 ||
		(r = mount_base_of(a, &f, err)) < 0)
		return r;
	return smb_backend_from_fields(&f, id, ret, err);
}

/* POST /v1/storage/smb/mounts */
void
api_post_mount(struct http_request *req, struct http_response *resp)
{
	struct smb_backend mr = { 0 };
	struct mount_result res;
	struct nq_error err = { 0 };
	json_t *body = NULL;

	/* Keys: backend_id and the SMB fields (parse_mount refuses others). */
	if (http_parse_object(req, NULL, &body, &err) < 0 ||
		parse_mount(AGENT(req), body, &mr, &err) < 0 ||
		mounts_attach(AGENT(req), &mr, &res, &err) < 0) {
		if (!nq_error_is_set(&err))
			nq_error_set(&err, "internal_error", NULL, "mount failed");
		log_info("mount refused backend_id=%s code=%s field=%s", mr.id, err.code,
			err.field);
		http_reply_error(resp, &err);
		goto out;
	}
	http_reply_json(resp, 200,
		json_pack("{s:s, s:s, s:s, s:s}", "backend_id", mr.id, "mount_point",
			res.mount_point, "volume_dir", res.volume_dir, "driver",
			mount_driver_name(res.driver)));
out:
	smb_mount_spec_release(&mr.spec);
	json_decref(body);
}

void
api_delete_mount(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };

	if (!api_param_uuid(req, 0, "backend_id", id, resp))
		return;
	api_reply_done(resp, mounts_detach(AGENT(req), id, &err), &err);
}
