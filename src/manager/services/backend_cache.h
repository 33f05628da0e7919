/* A backend's base cache (the agent's storage/basecache.h), seen from the
 * manager: list and purge are forwarded to a host the backend is attached
 * on (local first). */
#pragma once

#include <jansson.h>

#include "common/nq_error.h"

struct manager;

/* GET: the entries as the agent lists them; a backend of a kind without
 * a cache has none. *ret is a new reference. -ENOENT (not_found, 404)
 * for an unknown backend. */
int backend_cache_list(struct manager *m, const char *backend_id, json_t **ret,
	struct nq_error *err);
/* DELETE: purge all entries nothing uses, or only hash (NULL: all);
 * *ret = {removed, kept}; recorded as event backend.cache_purged. */
int backend_cache_purge(struct manager *m, const char *backend_id, const char *hash,
	json_t **ret, struct nq_error *err);
/* At the backend's removal: the cache is ours, not the operator's data,
 * and goes with it (entries in use are kept; an unreachable share keeps
 * them, logged). */
void backend_cache_drop(struct manager *m, const char *backend_id);
