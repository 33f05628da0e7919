/* Backend kind "smb": SMB/CIFS shares mounted by the agent (DESIGN.md §5,
 * §6). The manager validates, forwards credentials once and asks the agent
 * to mount (which probes writability); it never keeps the password. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "manager/backends/backend.h"
#include "common/json_util.h"
#include "common/log.h"
#include "common/nq_buf.h"
#include "common/smb_fields.h"
#include "common/validate.h"

#define CRED_BODY_MAX (NQ_USER_MAX * 6 + NQ_DOMAIN_MAX * 6 + NQ_SECRET_MAX * 6 + 128)

/* The stored config is struct smb_fields: every field's name, limits,
 * validation and role come from common/smb_fields.c. */

/* Parse config onto base (or empty). The password is a create-time field;
 * afterwards it changes only through rotate_password. */
static int
smb_parse(const struct backend_env *env, enum parse_mode mode, json_t *config,
	const void *base, void *ret_cfg, struct secret **ret_secret, struct nq_error *err)
{
	struct smb_fields c = { 0 };
	struct secret *pw = NULL;
	const char *secret = NULL;
	int r;
	(void)env;

	*ret_secret = NULL;
	if (base)
		c = *(const struct smb_fields *)base;
	if (config && !json_is_object(config))
		return nq_error_set(err, "invalid_field", "config",
			"config must be an object");
	if (mode != PARSE_CREATE && json_object_get(config, "password"))
		return nq_error_set(err, "invalid_field", "config.password",
			"the password is changed with rotate_password, not in config");
	if (config && (r = smb_fields_from_json(config, "config.", ~0u, NULL, &c, &secret,
			       err)) < 0)
		return r;
	if ((r = smb_fields_check(&c, "config.", err)) < 0)
		return r;
	if (mode == PARSE_CREATE && c.username[0] && !secret)
		return nq_error_set(err, "missing_field", "config.password",
			"config.password is required when config.username is set");
	if (mode == PARSE_CREATE && !c.username[0] && secret)
		return nq_error_set(err, "invalid_field", "config.password",
			"a guest backend (no config.username) takes no password");
	if (secret && secret_new(secret, strlen(secret), &pw) < 0)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	memcpy(ret_cfg, &c, sizeof c);
	*ret_secret = pw;
	return 0;
}

static json_t *
smb_to_json(const struct backend_env *env, const void *cfg)
{
	(void)env;
	return smb_fields_to_json(cfg, 0, false);
}

static bool
smb_uses_password(const void *cfg)
{
	return ((const struct smb_fields *)cfg)->username[0] != '\0';
}

static bool
smb_mount_differs(const void *a, const void *b)
{
	return smb_fields_differ(a, b, SMB_F_REMOUNT);
}

static bool
smb_creds_differ(const void *a, const void *b)
{
	return smb_fields_differ(a, b, SMB_F_CREDS);
}

/* ---- agent calls -------------------------------------------------------- */

static int
call(const struct backend_env *env, const char *method, const char *path, const char *body,
	long timeout_ms, struct agent_reply *rep, struct nq_error *err)
{
	return agent_call(env->agent, method, path, body, body ? strlen(body) : 0,
		timeout_ms, rep, err);
}

/* Append ,"key":"value" (the first member opens the object). */
static int
add_member(struct nq_buf *b, const char *key, const char *value)
{
	int r = nq_buf_addf(b, "%s\"%s\":", b->len ? "," : "{", key);

	return r < 0 ? r : json_buf_add_string(b, value);
}

static int
put_credentials(const struct backend_env *env, const char *id, const struct smb_fields *c,
	const struct secret *pw, struct nq_error *err)
{
	/* The only copy of the password outside its struct secret: a wiping
	 * buffer, cleared on every growth and when it goes out of scope. */
	_cleanup_(nq_buf_release) struct nq_buf body = NQ_BUF_INIT(CRED_BODY_MAX, true);
	struct agent_reply rep = { 0 };
	char path[128];
	int r;

	r = add_member(&body, "username", c->username);
	if (r >= 0)
		r = add_member(&body, "password", pw->buf);
	if (r >= 0 && c->domain[0])
		r = add_member(&body, "domain", c->domain);
	if (r >= 0)
		r = nq_buf_add(&body, "}", 1);
	if (r == -ENOMEM)
		return nq_error_setr(err, r, "internal_error", NULL, "out of memory");
	if (r < 0)
		return nq_error_set(err, "invalid_field", "password",
			"the credentials are too long");
	snprintf(path, sizeof path, "/v1/storage/smb/credentials/%s", id);
	r = agent_call(env->agent, "PUT", path, nq_buf_str(&body), body.len,
		env->call_timeout_ms, &rep, err);
	agent_reply_release(&rep);
	return r;
}

static void
delete_credentials(const struct backend_env *env, const char *id)
{
	struct agent_reply rep = { 0 };
	struct nq_error e = { 0 };
	char path[128];

	snprintf(path, sizeof path, "/v1/storage/smb/credentials/%s", id);
	if (call(env, "DELETE", path, NULL, env->call_timeout_ms, &rep, &e) < 0 &&
		rep.status != 404)
		log_warn("cannot delete credentials backend=%s code=%s", id, e.code);
	agent_reply_release(&rep);
}

static int
delete_mount(const struct backend_env *env, const char *id, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	char path[128];
	int r;

	snprintf(path, sizeof path, "/v1/storage/smb/mounts/%s", id);
	r = call(env, "DELETE", path, NULL, env->call_timeout_ms, &rep, err);
	if (r < 0 && rep.status == 404)
		r = 0; /* not mounted: nothing to drop */
	agent_reply_release(&rep);
	return r;
}

static int
post_mount(const struct backend_env *env, const char *id, const struct smb_fields *c,
	long timeout_ms, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	_cleanup_free_ char *body = NULL;
	json_t *o;
	int r;

	/* Every field the agent's mount takes, unset ones left out. */
	o = smb_fields_to_json(c, SMB_F_AGENT, true);
	if (!o || json_object_set_new(o, "backend_id", json_string(id)) < 0) {
		json_decref(o);
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	}
	body = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (!body)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	r = call(env, "POST", "/v1/storage/smb/mounts", body, timeout_ms, &rep, err);
	agent_reply_release(&rep);
	return r;
}

static int
smb_create(const struct backend_env *env, const char *id, const void *cfg,
	const struct secret *secret, struct nq_error *err)
{
	const struct smb_fields *c = cfg;
	struct nq_error ignore = { 0 };
	int r;

	if (c->username[0]) {
		if (!secret)
			return nq_error_set(err, "missing_field", "config.password",
				"config.password is required when config.username is set");
		r = put_credentials(env, id, c, secret, err);
		if (r < 0) {
			delete_credentials(env, id);
			return r;
		}
	}
	r = post_mount(env, id, c, env->call_timeout_ms, err);
	if (r < 0) {
		/* Leave nothing behind: no mount reference, no cred file. */
		delete_mount(env, id, &ignore);
		if (c->username[0])
			delete_credentials(env, id);
	}
	return r;
}

static int
smb_rotate(const struct backend_env *env, const char *id, const void *cfg,
	const struct secret *secret, struct nq_error *err)
{
	const struct smb_fields *c = cfg;

	if (!c->username[0])
		return nq_error_set(err, "invalid_field", "rotate_password",
			"a guest backend has no password to rotate");
	return put_credentials(env, id, c, secret, err);
}

static int
smb_reconfigure(const struct backend_env *env, const char *id, const void *old_cfg,
	const void *new_cfg, const struct secret *secret, struct nq_error *err)
{
	const struct smb_fields *o = old_cfg, *n = new_cfg;
	struct nq_error ignore = { 0 };
	int r;

	if (n->username[0] && (secret || smb_creds_differ(o, n))) {
		if (!secret)
			return nq_error_set(err, "missing_field", "rotate_password",
				"rotate_password is required when the username or domain changes");
		r = put_credentials(env, id, n, secret, err);
		if (r < 0)
			return r;
	}
	if (smb_mount_differs(o, n)) {
		r = delete_mount(env, id, err);
		if (r < 0)
			return r;
		r = post_mount(env, id, n, env->call_timeout_ms, err);
		if (r < 0) {
			/* Put the old mount back; the old password may be gone if
			 * it was rotated in the same request. */
			if (post_mount(env, id, o, env->call_timeout_ms, &ignore) < 0)
				log_warn("cannot restore previous mount backend=%s code=%s",
					id, ignore.code);
			return r;
		}
	}
	if (!n->username[0] && o->username[0])
		delete_credentials(env, id);
	return 0;
}

static int
remount(const struct backend_env *env, const char *id, const void *cfg,
	struct nq_error *err)
{
	return post_mount(env, id, cfg, env->call_timeout_ms, err);
}

static int
smb_capacity(const struct backend_env *env, const char *id, const void *cfg,
	bool may_remount, struct capacity *ret, struct nq_error *err)
{
	char path[160];

	snprintf(path, sizeof path, "/v1/storage/smb/mounts/%s/capacity", id);
	/* On 404 the agent forgot this backend (it restarted, or the server
	 * was away when it rebuilt its table): mount it again with the
	 * credentials it still holds. */
	return backend_agent_capacity(env, path, id, cfg, may_remount, remount, ret, err);
}

static int
smb_provision(const struct backend_env *env, const char *id, const void *cfg,
	const char *volume_id, const char *image, uint64_t size_bytes,
	struct volume_info *ret, struct nq_error *err)
{
	(void)cfg;
	return backend_agent_volume_create(env, "smb", id, volume_id, image, size_bytes,
		ret, err);
}

static int
smb_delete_volume(const struct backend_env *env, const char *id, const void *cfg,
	const char *volume_id, struct nq_error *err)
{
	(void)cfg;
	return backend_agent_volume_delete(env, "smb", id, volume_id, err);
}

static int
smb_destroy(const struct backend_env *env, const char *id, const void *cfg,
	struct nq_error *err)
{
	const struct smb_fields *c = cfg;
	int r = delete_mount(env, id, err);

	if (r < 0)
		return r;
	if (c->username[0])
		delete_credentials(env, id);
	return 0;
}

const struct backend_ops backend_smb_ops = {
	.kind = "smb",
	.cfg_size = sizeof(struct smb_fields),
	.parse = smb_parse,
	.to_json = smb_to_json,
	.uses_password = smb_uses_password,
	.mount_differs = smb_mount_differs,
	.creds_differ = smb_creds_differ,
	.create = smb_create,
	.rotate_secret = smb_rotate,
	.reconfigure = smb_reconfigure,
	.capacity = smb_capacity,
	.provision_volume = smb_provision,
	.delete_volume = smb_delete_volume,
	.destroy = smb_destroy,
};
