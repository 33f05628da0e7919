/* A backend's base cache through the agent; see backend_cache.h. */
#include "manager/services/backend_cache.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "manager/agent_client.h"
#include "manager/manager.h"
#include "manager/services/events.h"
#include "manager/services/hostpool.h"
#include "manager/services/registry.h"

static bool
hash_valid(const char *s)
{
	return s && strlen(s) == 64 && strspn(s, "0123456789abcdef") == 64;
}

/* 1 when backend_id has a cache (an SMB backend), 0 when its kind has
 * none, -ENOENT when there is no such backend. */
static int
has_cache(struct manager *m, const char *backend_id, struct nq_error *err)
{
	struct registry_item it = { 0 };
	int r;

	if (registry_item_get(m->reg, backend_id, &it) < 0)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"no backend with id %s", backend_id);
	r = strcmp(it.b->ops->kind, "smb") == 0;
	registry_item_release(&it);
	return r;
}

static int
forward(struct manager *m, const char *backend_id, const char *method, const char *hash,
	json_t **ret, struct nq_error *err)
{
	struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	char path[256];
	int r;

	r = hosts_env_for_backend(m, backend_id, &env, err);
	if (r < 0)
		return r;
	snprintf(path, sizeof path, "/v1/storage/smb/mounts/%s/cache%s%s", backend_id,
		hash ? "/" : "", hash ? hash : "");
	r = agent_call(env.agent, method, path, NULL, 0, env.call_timeout_ms, &rep, err);
	hosts_env_release(&env);
	if (r >= 0 && !rep.json)
		r = nq_error_setr(err, -EPROTO, "agent_unavailable", NULL,
			"the agent answered the cache request without a body");
	if (r >= 0)
		*ret = json_incref(rep.json);
	agent_reply_release(&rep);
	return r;
}

int
backend_cache_list(struct manager *m, const char *backend_id, json_t **ret,
	struct nq_error *err)
{
	int r = has_cache(m, backend_id, err);

	if (r < 0)
		return r;
	if (r == 0) {
		*ret = json_array();
		return 0;
	}
	return forward(m, backend_id, "GET", NULL, ret, err);
}

int
backend_cache_purge(struct manager *m, const char *backend_id, const char *hash,
	json_t **ret, struct nq_error *err)
{
	char cause[128];
	json_t *out = NULL;
	int r;

	if (hash && !hash_valid(hash))
		return nq_error_setr(err, -EINVAL, "invalid_field", "hash",
			"hash must be 64 lower-case hexadecimal digits (a SHA-256)");
	r = has_cache(m, backend_id, err);
	if (r < 0)
		return r;
	if (r == 0)
		r = (out = json_pack("{s:[], s:[]}", "removed", "kept")) ? 0 : -ENOMEM;
	else
		r = forward(m, backend_id, "DELETE", hash, &out, err);
	if (r < 0) {
		events_record(m, "api", "backend.cache_purged", "backend", backend_id,
			NULL, "failed", err->message);
		return r;
	}
	snprintf(cause, sizeof cause, "%s: removed %zu, kept %zu", hash ? hash : "all",
		json_array_size(json_object_get(out, "removed")),
		json_array_size(json_object_get(out, "kept")));
	events_record(m, "api", "backend.cache_purged", "backend", backend_id, NULL, "ok",
		cause);
	*ret = out;
	return 0;
}

void
backend_cache_drop(struct manager *m, const char *backend_id)
{
	struct nq_error err = { 0 };
	json_t *out = NULL;

	/* Part of the removal (its event): no cache event of its own. */
	if (has_cache(m, backend_id, &err) <= 0)
		return;
	if (forward(m, backend_id, "DELETE", NULL, &out, &err) < 0) {
		log_warn("backend removal: its base cache stays on the share id=%s: %s",
			backend_id, err.message);
		return;
	}
	log_info("backend removal: base cache purged id=%s removed=%zu kept=%zu",
		backend_id, json_array_size(json_object_get(out, "removed")),
		json_array_size(json_object_get(out, "kept")));
	json_decref(out);
}
