/* Volumes on storage backends (/v1/volumes): the service behind
 * routes_volumes.c. A volume is a row in `volumes` and a file the backend
 * keeps; VM rootfs volumes are made by the VM service (vms.c). */
#pragma once

#include <jansson.h>

#include "manager/auth/auth.h"
#include "common/nq_error.h"

struct manager;
struct volume_row;

#define VOLUME_SIZE_MAX (64ULL << 40) /* 64 TiB */

/* Every volume not in state "error", oldest first; new reference, NULL on
 * a database error. */
json_t *volumes_list_json(struct manager *m);
/* The rows of sql (a SELECT VOLUME_ROW_COLS, db/rows.h) as a JSON array of
 * each(row); new reference, NULL on a database error or a bad row. */
json_t *volumes_query_json(struct manager *m, const char *sql, unsigned nparams,
	const char *const *params, json_t *(*each)(const struct volume_row *v));
/* One volume; new reference, NULL with err not_found or internal_error. */
json_t *volumes_get_json(struct manager *m, const char *id, struct nq_error *err);
/* An empty sparse volume of size bytes (image NULL) or a clone of image on
 * backend_id; *ret_id gets its id. Nothing is left behind on failure. */
int volumes_create(struct manager *m, const char *backend_id, const char *image,
	unsigned long long size, char ret_id[AUTH_UUID_LEN + 1], struct nq_error *err);
/* A volume no VM uses: the file, then the row. */
int volumes_delete(struct manager *m, const char *id, struct nq_error *err);
