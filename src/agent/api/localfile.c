/* The localfile backend routes: register (or move) a backend's directory
 * below --local-root, list, forget. */
#include <string.h>

#include "common/http_server.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/validate.h"
#include "agent/api/api.h"
#include "agent/storage/localdirs.h"

/* PUT /v1/storage/localfile/backends/{backend_id} {path?}: register (or
 * move) a localfile backend's directory below --local-root. */
void
api_put_local_backend(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "path", NULL };
	char id[NQ_UUID_LEN + 1] = "", dir[PATH_MAX];
	struct nq_error err = { 0 };
	const char *path = NULL;
	json_t *body = NULL;

	if (validate_backend_id("backend_id", req->params[0], id, &err) < 0 ||
		http_parse_object(req, keys, &body, &err) < 0 ||
		json_get_string(body, "path", &path, &err) < 0 ||
		localdirs_attach(AGENT(req), id, path, dir, sizeof dir, &err) < 0) {
		log_info("localfile backend refused backend_id=%s code=%s field=%s", id,
			err.code, err.field);
		http_reply_error(resp, &err);
		json_decref(body);
		return;
	}
	json_decref(body);
	http_reply_json(resp, 200,
		json_pack("{s:s, s:s}", "backend_id", id, "volume_dir", dir));
}

void
api_delete_local_backend(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	int r = validate_backend_id("backend_id", req->params[0], id, &err);

	if (r >= 0)
		r = localdirs_detach(AGENT(req), id, &err);
	api_reply_done(resp, r, &err);
}
