/* Backend kind "localfile": volumes as sparse files local-<volume_id>.raw
 * in a directory on the VM host, served by the agent
 * (its /v1/storage/localfile routes). config.path is that directory; it must lie
 * below the agent's --local-root, which only the agent knows, so the
 * manager checks its form and the agent checks where it is. Empty means
 * the local root itself.
 *
 * The agent keeps a record per backend, and every provisioning first
 * registers the backend again (an idempotent PUT): a host that never saw
 * this backend, or lost its state, learns it on first use. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "manager/backends/backend.h"
#include "common/log.h"
#include "common/validate.h"

struct localfile_cfg {
	char path[PATH_MAX]; /* "" means the agent's local root */
};

static int
lf_parse(const struct backend_env *env, enum parse_mode mode, json_t *config,
	const void *base, void *ret_cfg, struct secret **ret_secret, struct nq_error *err)
{
	struct localfile_cfg c = { 0 };
	const char *key;
	json_t *val;
	int r;
	(void)env, (void)mode;

	*ret_secret = NULL;
	if (base)
		c = *(const struct localfile_cfg *)base;
	if (config && !json_is_object(config))
		return nq_error_set(err, "invalid_field", "config",
			"config must be an object");
	json_object_foreach(config, key, val) {
		if (strcmp(key, "path") != 0) {
			char field[64];
			snprintf(field, sizeof field, "config.%.40s", key);
			return nq_error_set(err, "unknown_field", field,
				"unknown field '%s' (a localfile backend takes only "
				"config.path)",
				field);
		}
		if (json_is_null(val) || (json_is_string(val) && !*json_string_value(val))) {
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
		/* Form only; the agent checks it lies below its local root. */
		r = validate_path_under("config.path", v, "/", err);
		if (r < 0)
			return r;
		snprintf(c.path, sizeof c.path, "%s", v);
	}
	memcpy(ret_cfg, &c, sizeof c);
	return 0;
}

static json_t *
lf_to_json(const struct backend_env *env, const void *cfg)
{
	const struct localfile_cfg *c = cfg;
	(void)env;

	return json_pack("{s:o}", "path", c->path[0] ? json_string(c->path) : json_null());
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

/* The agent names its body field "path"; the API names it config.path. */
static void
map_field(struct nq_error *err)
{
	if (!strcmp(err->field, "path"))
		snprintf(err->field, sizeof err->field, "config.path");
}

/* PUT /v1/storage/localfile/backends/{id}: register, create the
 * directory, prove it writable. */
static int
attach(const struct backend_env *env, const char *id, const struct localfile_cfg *c,
	struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	_cleanup_free_ char *body = NULL;
	char path[160];
	json_t *o = c->path[0] ? json_pack("{s:s}", "path", c->path) : json_object();
	int r;

	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	snprintf(path, sizeof path, "/v1/storage/localfile/backends/%s", id);
	r = agent_call(env->agent, "PUT", path, body, strlen(body), env->call_timeout_ms,
		&rep, err);
	agent_reply_release(&rep);
	if (r < 0)
		map_field(err);
	return r;
}

static int
lf_create(const struct backend_env *env, const char *id, const void *cfg,
	const struct secret *secret, struct nq_error *err)
{
	if (secret)
		return nq_error_set(err, "invalid_field", "config.password",
			"a localfile backend takes no password");
	return attach(env, id, cfg, err);
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
	struct nq_error ignore = { 0 };
	int r = lf_create(env, id, new_cfg, secret, err);

	/* A refused path leaves the old registration as it was. */
	if (r < 0 && attach(env, id, old_cfg, &ignore) < 0)
		log_warn("cannot restore the localfile registration backend=%s code=%s",
			id, ignore.code);
	return r;
}

static int
reattach(const struct backend_env *env, const char *id, const void *cfg,
	struct nq_error *err)
{
	return attach(env, id, cfg, err);
}

static int
lf_capacity(const struct backend_env *env, const char *id, const void *cfg,
	bool may_remount, struct capacity *ret, struct nq_error *err)
{
	char path[160];

	snprintf(path, sizeof path, "/v1/storage/localfile/backends/%s/capacity", id);
	return backend_agent_capacity(env, path, id, cfg, may_remount, reattach, ret, err);
}

static int
lf_provision(const struct backend_env *env, const char *id, const void *cfg,
	const char *volume_id, const char *image, uint64_t size_bytes,
	struct volume_info *ret, struct nq_error *err)
{
	int r = attach(env, id, cfg, err);

	if (r < 0)
		return r;
	return backend_agent_volume_create(env, "localfile", id, volume_id, image,
		size_bytes, ret, err);
}

static int
lf_delete_volume(const struct backend_env *env, const char *id, const void *cfg,
	const char *volume_id, struct nq_error *err)
{
	(void)cfg;
	return backend_agent_volume_delete(env, "localfile", id, volume_id, err);
}

static int
lf_destroy(const struct backend_env *env, const char *id, const void *cfg,
	struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	char path[160];
	int r;
	(void)cfg;

	/* The files stay where they are; the host forgets the directory. */
	snprintf(path, sizeof path, "/v1/storage/localfile/backends/%s", id);
	r = agent_call(env->agent, "DELETE", path, NULL, 0, env->call_timeout_ms, &rep,
		err);
	agent_reply_release(&rep);
	return r;
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
