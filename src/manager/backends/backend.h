/* A storage backend kind is one file implementing this ops table
 * (DESIGN.md §4). Adding NFS or iSCSI means adding backend_nfs.c with its
 * own config struct and ops and one line in backend_kinds[].
 *
 * A kind's config is a fixed-size struct of cfg_size bytes, parsed from
 * and rendered to JSON only here, at the API/DB boundary. It never holds
 * a password: a password arrives as a struct secret and goes straight to
 * the agent. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "manager/agent_client.h"
#include "common/nq_error.h"
#include "common/secret.h"

/* Process-wide settings the kinds need. */
struct backend_env {
	struct agent_client *agent;
	long call_timeout_ms;      /* mounts/probes */
	long provision_timeout_ms; /* a volume clone: multi-GB images take a while */
	long status_timeout_ms;    /* capacity for status: short */
};

/* A backend's capacity as one host sees it, the same for every kind:
 * free_bytes is what we may still write (the API's available_bytes, and
 * free_bytes as an alias), used_bytes = total_bytes - free_bytes. */
struct capacity {
	uint64_t total_bytes, used_bytes, free_bytes;
};

struct volume_info {
	char path[4096];
	uint64_t size_bytes, allocated_bytes;
	bool allocated_known; /* false: the agent said null (unknown) */
};

enum parse_mode {
	PARSE_CREATE, /* POST: full config, may carry "password" */
	PARSE_UPDATE, /* PATCH: merge over base; "password" refused */
	PARSE_LOAD,   /* from the database: trusted shape, still validated */
};

struct backend_ops {
	const char *kind;
	size_t cfg_size;
	/* Parse config (a JSON object; may be NULL in PARSE_UPDATE) into
	 * ret_cfg (cfg_size bytes, zeroed by the caller). base is the current
	 * config in PARSE_UPDATE, NULL otherwise. A password in the config
	 * (PARSE_CREATE) is returned in *ret_secret (caller frees), else NULL.
	 * Field names in errors are "config.<key>". */
	int (*parse)(const struct backend_env *env, enum parse_mode mode, json_t *config,
		const void *base, void *ret_cfg, struct secret **ret_secret,
		struct nq_error *err);
	/* New reference; no secret in it. */
	json_t *(*to_json)(const struct backend_env *env, const void *cfg);
	/* True when the config authenticates with a password. */
	bool (*uses_password)(const void *cfg);
	/* True when a and b mount differently (PATCH must re-probe). */
	bool (*mount_differs)(const void *a, const void *b);
	/* True when a and b need different credentials (user/domain). */
	bool (*creds_differ)(const void *a, const void *b);

	/* Forward credentials and prove the backend works. On failure
	 * everything done so far is undone. */
	int (*create)(const struct backend_env *env, const char *id, const void *cfg,
		const struct secret *secret, struct nq_error *err);
	/* Replace credentials without remounting. */
	int (*rotate_secret)(const struct backend_env *env, const char *id,
		const void *cfg, const struct secret *secret, struct nq_error *err);
	/* Switch a live backend from old to new config (re-probe); on failure
	 * the old config is restored as far as possible. secret: new password
	 * or NULL to keep the stored one. */
	int (*reconfigure)(const struct backend_env *env, const char *id,
		const void *old_cfg, const void *new_cfg, const struct secret *secret,
		struct nq_error *err);
	/* Capacity for status; must answer within env->status_timeout_ms.
	 * -ENOENT when the host does not know the backend (the agent
	 * restarted); with may_remount the kind then re-establishes it. */
	int (*capacity)(const struct backend_env *env, const char *id, const void *cfg,
		bool may_remount, struct capacity *ret, struct nq_error *err);
	/* Empty sparse volume of size_bytes (image == NULL), or a clone. */
	int (*provision_volume)(const struct backend_env *env, const char *id,
		const void *cfg, const char *volume_id, const char *image,
		uint64_t size_bytes, struct volume_info *ret, struct nq_error *err);
	int (*delete_volume)(const struct backend_env *env, const char *id,
		const void *cfg, const char *volume_id, struct nq_error *err);
	/* Forget the backend on the host: clear credentials, drop the mount.
	 * Files on the storage are left alone. */
	int (*destroy)(const struct backend_env *env, const char *id, const void *cfg,
		struct nq_error *err);
};

extern const struct backend_ops backend_localfile_ops;
extern const struct backend_ops backend_smb_ops;

/* Helpers for kinds whose volumes the agent serves under
 * /v1/storage/<kind>/. */
typedef int (*backend_reattach_fn)(const struct backend_env *env, const char *id,
	const void *cfg, struct nq_error *err);
/* GET path (a capacity route). On 404 the host does not know the backend:
 * -ENOENT, or with may_remount, reattach and ask again. */
int backend_agent_capacity(const struct backend_env *env, const char *path, const char *id,
	const void *cfg, bool may_remount, backend_reattach_fn reattach,
	struct capacity *ret, struct nq_error *err);
/* POST /v1/storage/<kind>/volumes under the provisioning timeout. */
int backend_agent_volume_create(const struct backend_env *env, const char *kind,
	const char *id, const char *volume_id, const char *image, uint64_t size_bytes,
	struct volume_info *ret, struct nq_error *err);
/* GET /v1/storage/<kind>/volumes/<id>: the volume volume_id when the host
 * has it (1, *ret filled), 0 when it has not (only finished volumes are
 * listed; a clone in progress is not). */
int backend_agent_volume_find(const struct backend_env *env, const char *kind,
	const char *id, const char *volume_id, struct volume_info *ret,
	struct nq_error *err);
/* DELETE /v1/storage/<kind>/volumes/<id>/<volume_id>; 404 counts as done. */
int backend_agent_volume_delete(const struct backend_env *env, const char *kind,
	const char *id, const char *volume_id, struct nq_error *err);

/* The kind table, or NULL for an unknown kind. */
const struct backend_ops *backend_ops_find(const char *kind);

/* The built-in default backend. */
#define BACKEND_DEFAULT_ID "localfile-default"
