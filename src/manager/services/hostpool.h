/* The agent of each host. Every call the manager makes to an agent goes
 * through the environment of the host it is for: hosts_env gives a copy
 * of the process-wide backend_env whose agent is that host's client
 * (unix socket for the built-in host "local", TLS with the pinned
 * certificate and the host's token for enrolled hosts). The client is
 * referenced until hosts_env_release, so a host removed meanwhile does
 * not free it under the caller. */
#pragma once

#include "common/nq_error.h"
#include "manager/backends/backend.h"

struct manager;

/* *ret = the environment for host_id. -ENOENT (err not_found, field
 * "host_id") for an unknown host. */
int hosts_env(struct manager *m, const char *host_id, struct backend_env *ret,
	struct nq_error *err);
void hosts_env_release(struct backend_env *env);
/* Forget the cached client of host_id (every host when NULL): after a
 * host is deleted, and at shutdown. */
void hostpool_drop(const char *host_id);
/* The environment of the host a volume is used on: its VM's host, else
 * the first host its backend is attached on (local first), else local. */
int hosts_env_for_volume(struct manager *m, const char *volume_id, struct backend_env *ret,
	struct nq_error *err);
/* The first host backend_id is attached on (local first), else local. */
int hosts_env_for_backend(struct manager *m, const char *backend_id,
	struct backend_env *ret, struct nq_error *err);
