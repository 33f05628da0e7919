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

/* Parse and validate a mount request body into req (spec owned by caller). */
static int
parse_mount(struct agent *a, json_t *body, struct mount_request *mr, struct nq_error *err)
{
	const char *id, *server, *share, *subdir, *user, *dom, *vers, *opts, *base;
	char canon_base[PATH_MAX];
	int r;

	if ((r = json_req_string(body, "backend_id", &id, err)) < 0 ||
	    (r = json_req_string(body, "server", &server, err)) < 0 ||
	    (r = json_req_string(body, "share", &share, err)) < 0 ||
	    (r = json_get_string(body, "subdir", &subdir, err)) < 0 ||
	    (r = json_get_string(body, "username", &user, err)) < 0 ||
	    (r = json_get_string(body, "domain", &dom, err)) < 0 ||
	    (r = json_get_string(body, "smb_version", &vers, err)) < 0 ||
	    (r = json_get_string(body, "mount_options", &opts, err)) < 0 ||
	    (r = json_get_string(body, "mount_base", &base, err)) < 0)
		return r;
	if ((r = validate_uuid("backend_id", id, mr->backend_id, err)) < 0 ||
	    (r = validate_server("server", server, mr->spec.server,
		     sizeof mr->spec.server, err)) < 0 ||
	    (r = validate_share("share", share, err)) < 0 ||
	    (r = validate_subdir("subdir", subdir ? subdir : "", mr->subdir,
		     sizeof mr->subdir, err)) < 0 ||
	    (user && *user && (r = validate_username("username", user, err)) < 0) ||
	    (dom && *dom && (r = validate_domain("domain", dom, err)) < 0) ||
	    (r = validate_smb_version("smb_version", vers, err)) < 0 ||
	    (r = validate_mount_options("mount_options", opts ? opts : "",
		     &mr->spec.opts, err)) < 0)
		return r;
	if (dom && *dom && !(user && *user))
		return nq_error_set(err, "invalid_field", "domain",
			"domain needs a username; guest mounts have no domain");
	if (!base || !*base) {
		r = agent_default_mount_base(a, canon_base, sizeof canon_base);
		if (r < 0)
			return nq_error_setr(err, r, "internal_error", NULL, "mount base too long");
		base = canon_base;
	}
	r = validate_path_under("mount_base", base, a->cfg.mount_root, err);
	if (r < 0)
		return r;
	if (!strcmp(base, a->cfg.mount_root))
		return nq_error_set(err, "invalid_field", "mount_base",
			"mount_base must be a directory below %s, not the root itself",
			a->cfg.mount_root);
	snprintf(mr->mount_base, sizeof mr->mount_base, "%s", base);
	snprintf(mr->spec.share, sizeof mr->spec.share, "%s", share);
	snprintf(mr->spec.username, sizeof mr->spec.username, "%s", user ? user : "");
	snprintf(mr->spec.domain, sizeof mr->spec.domain, "%s", dom ? dom : "");
	snprintf(mr->spec.version, sizeof mr->spec.version, "%s",
		vers && *vers ? vers : "default");
	return 0;
}

/* POST /v1/storage/smb/mounts */
void
api_post_mount(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "backend_id", "server", "share", "subdir",
		"username", "domain", "smb_version", "mount_options", "mount_base", NULL };
	struct mount_request mr = { 0 };
	struct mount_result res;
	struct nq_error err = { 0 };
	json_t *body = NULL;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
	    parse_mount(AGENT(req), body, &mr, &err) < 0 ||
	    mounts_attach(AGENT(req), &mr, &res, &err) < 0) {
		if (!nq_error_is_set(&err))
			nq_error_set(&err, "internal_error", NULL, "mount failed");
		log_info("mount refused backend_id=%s code=%s field=%s", mr.backend_id,
			err.code, err.field);
		http_reply_error(resp, &err);
		goto out;
	}
	http_reply_json(resp, 200, json_pack("{s:s, s:s, s:s, s:s}",
		"backend_id", mr.backend_id, "mount_point", res.mount_point,
		"volume_dir", res.volume_dir, "driver", mount_driver_name(res.driver)));
out:
	smb_mount_spec_release(&mr.spec);
	json_decref(body);
}

void
api_list_mounts(struct http_request *req, struct http_response *resp)
{
	http_reply_json(resp, 200, mounts_list_json(AGENT(req)));
}

void
api_delete_mount(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };

	if (!api_param_uuid(req, 0, "backend_id", id, resp))
		return;
	if (mounts_detach(AGENT(req), id, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	http_reply_empty(resp, 204);
}
