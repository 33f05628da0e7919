/* The manager process: shared state handed to every route handler as the
 * server's userdata, and the service functions the routes call. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>

#include "manager/auth/auth.h"
#include "manager/backends/backend.h"
#include "manager/db/db.h"
#include "common/nq_error.h"
#include "common/http_server.h"
#include "manager/mgr_config.h"
#include "manager/auth/ratelimit.h"
#include "manager/services/registry.h"

struct manager {
	struct mgr_config cfg;
	struct db *db;
	struct registry *reg;
	struct backend_env env;
	pthread_mutex_t rl_lock;
	struct ratelimit *rl_user, *rl_addr; /* failed logins, per key kind */
	char dummy_hash[AUTH_HASH_MAX];      /* verified for unknown users */
	sem_t hash_slots; /* concurrent argon2id computations (64 MiB each) */
	/* Status refresher. */
	pthread_t refresher;
	bool refresher_started;
	pthread_mutex_t refresh_lock;
	pthread_cond_t refresh_cond;
	bool stopping;
	bool refresh_now;
	/* Recovery of interrupted operations (vms_recover.c). */
	pthread_t recoverer;
	bool recoverer_started;
};

/* ---- storage (storage.c) ---- */

/* Build the registry from the database; make sure localfile-default exists
 * and that exactly one backend is the default. */
int storage_load(struct manager *m);
/* The status word for a failed check's error code: "unreachable" (agent
 * or server cannot be reached), "auth_failed", "access_denied",
 * "not_found", "not_writable", "full", "busy" or "error". */
const char *storage_status_of(const char *code);
/* Check one backend now (capacity with a short timeout) and cache it. */
void storage_refresh_one(struct manager *m, struct backend *b);
int storage_refresher_start(struct manager *m);
void storage_refresher_stop(struct manager *m);
/* Backend as the API shows it; new reference. */
json_t *storage_backend_json(struct manager *m, const struct registry_item *it,
	long long volume_count);
/* Number of volumes per backend id (object id → count); new reference. */
json_t *storage_volume_counts(struct manager *m);
/* Volume ids on a backend as a JSON array; new reference, NULL on error. */
json_t *storage_backend_volumes(struct manager *m, const char *id);

struct backend_create {
	const char *name;
	const struct backend_ops *ops;
	json_t *config;
	bool make_default;
};
/* Validate, forward credentials, probe, insert, publish. *ret_id gets the
 * new id. Nothing is left behind on failure. */
int storage_create(struct manager *m, const struct backend_create *bc,
	char ret_id[BACKEND_ID_MAX + 1], struct nq_error *err);

struct backend_update {
	const char *name;            /* NULL: unchanged */
	json_t *config;              /* NULL: unchanged */
	const char *rotate_password; /* NULL or "": unchanged */
	bool make_default;
};
int storage_update(struct manager *m, const char *id,
	const struct backend_update *bu, struct nq_error *err);
/* 409 backend_in_use sets *ret_volumes (array of ids; caller decrefs). */
int storage_delete(struct manager *m, const char *id, json_t **ret_volumes,
	struct nq_error *err);

/* ---- volumes (routes_volumes.c) ---- */
extern const struct http_route volume_routes[];
extern const size_t volume_routes_count;

/* ---- auth (routes_auth.c) ---- */
/* Create the first admin when there is no user yet. */
int auth_bootstrap(struct manager *m);
int mgr_auth_hook(struct http_request *req, struct http_response *resp);
extern const struct http_route auth_routes[];
extern const size_t auth_routes_count;

/* ---- storage routes (routes_storage.c) ---- */
extern const struct http_route storage_routes[];
extern const size_t storage_routes_count;
