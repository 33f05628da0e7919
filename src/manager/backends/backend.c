/* The table of backend kinds: one line per kind. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manager/backends/backend.h"
#include "common/macro.h"

static const struct backend_ops *const kinds[] = {
	&backend_localfile_ops,
	&backend_smb_ops,
};

const struct backend_ops *
backend_ops_find(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strcmp(kinds[i]->kind, kind) == 0)
			return kinds[i];
	return NULL;
}

static uint64_t
get_u64(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_integer(v) && json_integer_value(v) >= 0
		       ? (uint64_t)json_integer_value(v)
		       : 0;
}

/* size_bytes and allocated_bytes (null: unknown) of an agent's volume. */
static void
volume_info_from_json(json_t *o, struct volume_info *ret)
{
	json_t *a = json_object_get(o, "allocated_bytes");

	ret->size_bytes = get_u64(o, "size_bytes");
	ret->allocated_known = json_is_integer(a) && json_integer_value(a) >= 0;
	ret->allocated_bytes = ret->allocated_known ? (uint64_t)json_integer_value(a) : 0;
}

int
backend_agent_capacity(const struct backend_env *env, const char *path, const char *id,
	const void *cfg, bool may_remount, backend_reattach_fn reattach,
	struct capacity *ret, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	int r;

	r = agent_call(env->agent, "GET", path, NULL, 0, env->status_timeout_ms, &rep, err);
	if (r < 0 && rep.status == 404) {
		agent_reply_release(&rep);
		if (!may_remount)
			return -ENOENT;
		/* The host forgot this backend (it restarted, or never saw it):
		 * establish it again, then ask once more. */
		memset(err, 0, sizeof *err);
		r = reattach(env, id, cfg, err);
		if (r < 0)
			return r;
		r = agent_call(env->agent, "GET", path, NULL, 0, env->status_timeout_ms,
			&rep, err);
	}
	if (r >= 0) {
		ret->total_bytes = get_u64(rep.json, "total_bytes");
		ret->free_bytes = json_object_get(rep.json, "available_bytes")
					  ? get_u64(rep.json, "available_bytes")
					  : get_u64(rep.json, "free_bytes");
		/* Used is total - available, whatever the agent's version said
		 * (backend.h): the same figure for every kind. */
		ret->used_bytes = ret->total_bytes > ret->free_bytes
					  ? ret->total_bytes - ret->free_bytes
					  : 0;
	}
	agent_reply_release(&rep);
	return r;
}

int
backend_agent_volume_create(const struct backend_env *env, const char *kind,
	const char *id, const char *volume_id, const char *image, uint64_t size_bytes,
	struct volume_info *ret, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	_cleanup_free_ char *body = NULL;
	char path[64];
	json_t *o;
	int r;

	o = json_pack("{s:s, s:s}", "backend_id", id, "volume_id", volume_id);
	if (o && image)
		json_object_set_new(o, "image", json_string(image));
	if (o && size_bytes)
		json_object_set_new(o, "size_bytes", json_integer((json_int_t)size_bytes));
	body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!body)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	snprintf(path, sizeof path, "/v1/storage/%s/volumes", kind);
	/* A clone moves the image's data: not bounded by the short call
	 * timeout (VM provisioning runs in a background worker). */
	r = agent_call(env->agent, "POST", path, body, strlen(body),
		env->provision_timeout_ms > 0
			? env->provision_timeout_ms
			: env->call_timeout_ms,
		&rep, err);
	if (r >= 0) {
		const char *p = json_string_value(json_object_get(rep.json, "path"));
		snprintf(ret->path, sizeof ret->path, "%s", p ? p : "");
		volume_info_from_json(rep.json, ret);
	}
	agent_reply_release(&rep);
	return r;
}

int
backend_agent_volume_find(const struct backend_env *env, const char *kind, const char *id,
	const char *volume_id, struct volume_info *ret, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	char path[160];
	json_t *v;
	size_t i;
	int r;

	snprintf(path, sizeof path, "/v1/storage/%s/volumes/%s", kind, id);
	r = agent_call(env->agent, "GET", path, NULL, 0, env->call_timeout_ms, &rep, err);
	if (r < 0 && rep.status == 404 && strcmp(err->code, "not_found") == 0)
		r = 0; /* the host does not know the backend: no volume there */
	else if (r >= 0)
		json_array_foreach(rep.json, i, v) {
			const char *vid = json_string_value(json_object_get(v,
				"volume_id"));
			const char *p = json_string_value(json_object_get(v, "path"));
			if (!vid || strcmp(vid, volume_id) != 0)
				continue;
			snprintf(ret->path, sizeof ret->path, "%s", p ? p : "");
			volume_info_from_json(v, ret);
			r = 1;
			break;
		}
	agent_reply_release(&rep);
	return r;
}

int
backend_agent_volume_delete(const struct backend_env *env, const char *kind,
	const char *id, const char *volume_id, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	char path[200];
	int r;

	snprintf(path, sizeof path, "/v1/storage/%s/volumes/%s/%s", kind, id, volume_id);
	r = agent_call(env->agent, "DELETE", path, NULL, 0, env->call_timeout_ms, &rep,
		err);
	if (r < 0 && rep.status == 404)
		r = 0; /* the host does not know the backend: nothing to delete */
	agent_reply_release(&rep);
	return r;
}
