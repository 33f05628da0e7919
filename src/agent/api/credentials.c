/* The SMB credential routes: PUT stores (proving a rotation against the
 * server first), DELETE forgets. The password goes to a 0600 file and
 * nowhere else; the routes are flagged sensitive so no log shows it. */
#include <string.h>

#include "common/http_server.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/validate.h"
#include "agent/api/api.h"
#include "agent/mounts/mounts.h"
#include "agent/smb/credstore.h"
#include "agent/smb/mount.h"

/* A backend this agent knows already (a rotation): prove the new
 * credentials against its server before they replace anything, so a wrong
 * password leaves the old file and the live mount exactly as they were.
 * An unknown backend (first attach) is proved by the mount that follows. */
static int
store_credentials(struct agent *a, const char *id, const char *user, const char *pass,
	size_t len, const char *dom, struct nq_error *err)
{
	struct smb_mount_spec spec = { 0 };
	char dir[PATH_MAX], path[PATH_MAX];
	int r;

	if (mounts_backend_spec(a, id, &spec, dir, sizeof dir) < 0)
		return credstore_put(a, id, user, pass, len, dom);
	snprintf(spec.username, sizeof spec.username, "%s", user);
	snprintf(spec.domain, sizeof spec.domain, "%s", dom ? dom : "");
	r = credstore_put_pending(a, id, user, pass, len, dom);
	if (r >= 0 && (r = credstore_pending_path(a, id, path, sizeof path)) >= 0) {
		r = smb_check_credentials(a, &spec, path, dir, err);
		if (r >= 0)
			r = credstore_pending_commit(a, id);
		else
			log_info("new credentials refused by the server backend_id=%s code=%s",
				id, err->code);
	}
	if (r < 0)
		credstore_pending_drop(a, id);
	smb_mount_spec_release(&spec);
	return r;
}

/* PUT /v1/storage/smb/credentials/{backend_id} {username, password, domain?} */
void
api_put_credentials(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "username", "password", "domain", NULL };
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	const char *user, *pass, *dom;
	json_t *body = NULL;
	int r;

	if (!api_param_uuid(req, 0, "backend_id", id, resp))
		return;
	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "username", &user, &err) < 0 ||
		json_req_string(body, "password", &pass, &err) < 0 ||
		json_get_string(body, "domain", &dom, &err) < 0 ||
		validate_username("username", user, &err) < 0 ||
		validate_password("password", pass,
			json_string_length(json_object_get(body, "password")), &err) < 0 ||
		(dom && *dom && validate_domain("domain", dom, &err) < 0))
		goto fail;
	if (!*user) {
		nq_error_set(&err, "invalid_field", "username",
			"username must not be empty (guest backends need no credentials)");
		goto fail;
	}
	r = store_credentials(AGENT(req), id, user, pass,
		json_string_length(json_object_get(body, "password")), dom, &err);
	if (r < 0 && err.code[0])
		goto fail;
	if (r < 0) {
		nq_error_setr(&err, r, "io_error", NULL,
			"cannot write the credentials file: %s", strerror(-r));
		goto fail;
	}
	log_info("credentials stored backend_id=%s", id);
	json_decref(body);
	http_reply_empty(resp, 204);
	return;
fail:
	json_decref(body);
	http_reply_error(resp, &err);
}

/* DELETE /v1/storage/smb/credentials/{backend_id} */
void
api_delete_credentials(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	int r;

	if (!api_param_uuid(req, 0, "backend_id", id, resp))
		return;
	r = credstore_delete(AGENT(req), id);
	if (r < 0) {
		http_reply_errorf(resp, "io_error", NULL,
			"cannot delete the credentials file: %s", strerror(-r));
		return;
	}
	log_info("credentials deleted backend_id=%s", id);
	http_reply_empty(resp, 204);
}
