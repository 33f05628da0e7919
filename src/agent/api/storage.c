/* The agent's whole privileged surface: one route table, one page. Every
 * handler parses strictly (unknown keys are errors), validates with the
 * allow-lists in validate.c, and only then calls into the modules, which
 * build every path themselves from the validated ids. */
#include <string.h>

#include "common/http_server.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/validate.h"
#include "agent/agent.h"
#include "agent/smb/credstore.h"
#include "agent/storage/localdirs.h"
#include "agent/mounts/mounts.h"
#include "agent/smb/mount.h"
#include "agent/storage/volumes.h"

#define AGENT(req) ((struct agent *)(req)->userdata)

static const enum volume_kind kind_smb = VOLUME_SMB, kind_local = VOLUME_LOCAL;
#define KIND(req) (*(const enum volume_kind *)(req)->route_data)

/* SMB backend ids are the manager's UUIDs; a localfile backend may also
 * be the built-in "localfile-default". */
static int
check_backend_id(enum volume_kind k, const char *field, const char *in,
	char out[NQ_UUID_LEN + 1], struct nq_error *err)
{
	return k == VOLUME_SMB ? validate_uuid(field, in, out, err)
			       : validate_backend_id(field, in, out, err);
}

static bool
param_uuid(struct http_request *req, unsigned i, const char *field,
	char out[NQ_UUID_LEN + 1], struct http_response *resp)
{
	struct nq_error err = { 0 };

	if (validate_uuid(field, req->params[i], out, &err) < 0) {
		http_reply_error(resp, &err);
		return false;
	}
	return true;
}

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
static void
put_credentials(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "username", "password", "domain", NULL };
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	const char *user, *pass, *dom;
	json_t *body = NULL;
	int r;

	if (!param_uuid(req, 0, "backend_id", id, resp))
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
static void
delete_credentials(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	int r;

	if (!param_uuid(req, 0, "backend_id", id, resp))
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
static void
post_mount(struct http_request *req, struct http_response *resp)
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

static void
list_mounts(struct http_request *req, struct http_response *resp)
{
	http_reply_json(resp, 200, mounts_list_json(AGENT(req)));
}

static void
delete_mount(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };

	if (!param_uuid(req, 0, "backend_id", id, resp))
		return;
	if (mounts_detach(AGENT(req), id, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	http_reply_empty(resp, 204);
}

static void
reply_capacity(struct http_response *resp, const struct capacity *c)
{
	json_t *o = json_pack("{s:I, s:I, s:I}",
		"total_bytes", (json_int_t)c->total_bytes,
		"used_bytes", (json_int_t)c->used_bytes,
		"free_bytes", (json_int_t)c->free_bytes);

	if (o && c->health[0]) {
		json_object_set_new(o, "health", json_string(c->health));
		json_object_set_new(o, "health_message", json_string(c->health_message));
	}
	http_reply_json(resp, 200, o);
}

static void
get_capacity(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	struct capacity c;

	if (!param_uuid(req, 0, "backend_id", id, resp))
		return;
	if (mounts_capacity(AGENT(req), id, &c, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	reply_capacity(resp, &c);
}

/* POST /v1/storage/<kind>/volumes {backend_id, volume_id, image?, size_bytes?} */
static void
post_volume(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "backend_id", "volume_id", "image",
		"size_bytes", NULL };
	char bid[NQ_UUID_LEN + 1], vid[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	const char *b, *v, *image;
	unsigned long long size = 0;
	struct volume_info info;
	json_t *body = NULL;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
	    json_req_string(body, "backend_id", &b, &err) < 0 ||
	    json_req_string(body, "volume_id", &v, &err) < 0 ||
	    json_get_string(body, "image", &image, &err) < 0 ||
	    json_get_u64(body, "size_bytes", &size, NULL, &err) < 0 ||
	    check_backend_id(KIND(req), "backend_id", b, bid, &err) < 0 ||
	    validate_uuid("volume_id", v, vid, &err) < 0 ||
	    (image && validate_image_name("image", image, &err) < 0) ||
	    volumes_create(AGENT(req), KIND(req), bid, vid, image, size, &info, &err) < 0) {
		http_reply_error(resp, &err);
		json_decref(body);
		return;
	}
	json_decref(body);
	http_reply_json(resp, 201, json_pack("{s:s, s:I, s:o, s:I}", "path", info.path,
		"size_bytes", (json_int_t)info.size_bytes,
		"allocated_bytes", info.allocated_bytes < 0 ? json_null()
							    : json_integer(info.allocated_bytes),
		"bytes_copied", (json_int_t)info.copy.bytes_written));
}

static void
list_volumes(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	json_t *arr;

	if (check_backend_id(KIND(req), "backend_id", req->params[0], id, &err) < 0 ||
	    volumes_list(AGENT(req), KIND(req), id, &arr, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	http_reply_json(resp, 200, arr);
}

static void
delete_volume(struct http_request *req, struct http_response *resp)
{
	char bid[NQ_UUID_LEN + 1], vid[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };

	if (check_backend_id(KIND(req), "backend_id", req->params[0], bid, &err) < 0 ||
	    validate_uuid("volume_id", req->params[1], vid, &err) < 0 ||
	    volumes_delete(AGENT(req), KIND(req), bid, vid, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	http_reply_empty(resp, 204);
}

/* PUT /v1/storage/localfile/backends/{backend_id} {path?}: register (or
 * move) a localfile backend's directory below --local-root. */
static void
put_local_backend(struct http_request *req, struct http_response *resp)
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
	http_reply_json(resp, 200, json_pack("{s:s, s:s}", "backend_id", id,
		"volume_dir", dir));
}

static void
list_local_backends(struct http_request *req, struct http_response *resp)
{
	http_reply_json(resp, 200, localdirs_list_json(AGENT(req)));
}

static void
delete_local_backend(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };

	if (validate_backend_id("backend_id", req->params[0], id, &err) < 0 ||
	    localdirs_detach(AGENT(req), id, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	http_reply_empty(resp, 204);
}

static void
local_capacity(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	struct capacity c;

	if (validate_backend_id("backend_id", req->params[0], id, &err) < 0 ||
	    localdirs_capacity(AGENT(req), id, &c, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	reply_capacity(resp, &c);
}

static void
list_images(struct http_request *req, struct http_response *resp)
{
	json_t *arr;
	int r = images_list(AGENT(req), &arr);

	if (r < 0) {
		http_reply_errorf(resp, "io_error", NULL,
			"cannot list the image directory: %s", strerror(-r));
		return;
	}
	http_reply_json(resp, 200, arr);
}

static void
healthz(struct http_request *req, struct http_response *resp)
{
	(void)req;
	http_reply_json(resp, 200, json_pack("{s:s}", "status", "ok"));
}

static const struct http_route routes[] = {
	{ "PUT", "/v1/storage/smb/credentials/{backend_id}", put_credentials,
	  ROUTE_SENSITIVE, 8192, NULL },
	{ "DELETE", "/v1/storage/smb/credentials/{backend_id}", delete_credentials, 0, 0, NULL },
	{ "POST", "/v1/storage/smb/mounts", post_mount, 0, 16384, NULL },
	{ "GET", "/v1/storage/smb/mounts", list_mounts, 0, 0, NULL },
	{ "DELETE", "/v1/storage/smb/mounts/{backend_id}", delete_mount, 0, 0, NULL },
	{ "GET", "/v1/storage/smb/mounts/{backend_id}/capacity", get_capacity, 0, 0, NULL },
	{ "POST", "/v1/storage/smb/volumes", post_volume, 0, 4096, &kind_smb },
	{ "GET", "/v1/storage/smb/volumes/{backend_id}", list_volumes, 0, 0, &kind_smb },
	{ "DELETE", "/v1/storage/smb/volumes/{backend_id}/{volume_id}", delete_volume, 0, 0,
	  &kind_smb },
	{ "PUT", "/v1/storage/localfile/backends/{backend_id}", put_local_backend, 0, 8192,
	  NULL },
	{ "GET", "/v1/storage/localfile/backends", list_local_backends, 0, 0, NULL },
	{ "DELETE", "/v1/storage/localfile/backends/{backend_id}", delete_local_backend, 0, 0,
	  NULL },
	{ "GET", "/v1/storage/localfile/backends/{backend_id}/capacity", local_capacity, 0, 0,
	  NULL },
	{ "POST", "/v1/storage/localfile/volumes", post_volume, 0, 4096, &kind_local },
	{ "GET", "/v1/storage/localfile/volumes/{backend_id}", list_volumes, 0, 0,
	  &kind_local },
	{ "DELETE", "/v1/storage/localfile/volumes/{backend_id}/{volume_id}", delete_volume,
	  0, 0, &kind_local },
	{ "GET", "/v1/images", list_images, 0, 0, NULL },
	{ "GET", "/healthz", healthz, ROUTE_NO_AUTH, 0, NULL },
};

/* Storage routes, then the VM routes of routes_vms.c, in one table built
 * once before the server starts. */
const struct http_route *
agent_routes(size_t *ret_n)
{
	static struct http_route all[ARRAY_SIZE(routes) + 16];
	static size_t n;
	size_t nvm;
	const struct http_route *vm = agent_vm_routes(&nvm);

	if (!n && ARRAY_SIZE(routes) + nvm <= ARRAY_SIZE(all)) {
		memcpy(all, routes, sizeof routes);
		memcpy(all + ARRAY_SIZE(routes), vm, nvm * sizeof *vm);
		n = ARRAY_SIZE(routes) + nvm;
	}
	*ret_n = n;
	return all;
}
