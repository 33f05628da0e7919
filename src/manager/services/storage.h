/* Storage backends: the service behind routes_storage.c (storage.c) and
 * the status refresher (refresher.c). */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/nq_error.h"
#include "manager/backends/backend.h"
#include "manager/services/registry.h"

struct manager;

/* Build the registry from the database; make sure localfile-default exists
 * and that exactly one backend is the default. */
int storage_load(struct manager *m);
/* The status word for a failed check's error code: "unreachable" (agent
 * or server cannot be reached), "auth_failed", "access_denied",
 * "not_found", "not_writable", "full", "busy" or "error". */
const char *storage_status_of(const char *code);
/* Check b on one host (env: that host's agent) into *ret. */
void storage_check_on(struct manager *m, const struct backend *b,
	const struct backend_env *env, struct backend_status *ret);
/* Check one backend now on every host it is attached on (capacity with a
 * short timeout) and cache the worst. */
void storage_refresh_one(struct manager *m, struct backend *b);
/* b is the instance the registry holds for its id (not replaced by a
 * PATCH since it was taken). */
bool storage_is_current(struct manager *m, const struct backend *b);
int storage_refresher_start(struct manager *m);
void storage_refresher_stop(struct manager *m);
/* {total_bytes, used_bytes, available_bytes, free_bytes (= available)};
 * new reference. */
json_t *storage_capacity_json(const struct capacity *c);
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
	const char *host_id; /* NULL: the local host */
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
int storage_update(struct manager *m, const char *id, const struct backend_update *bu,
	struct nq_error *err);
/* 409 backend_in_use sets *ret_volumes (array of ids; caller decrefs). */
int storage_delete(struct manager *m, const char *id, json_t **ret_volumes,
	struct nq_error *err);
