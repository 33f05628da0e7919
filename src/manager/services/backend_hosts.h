/* A backend attached per host (backend_hosts rows): the manager sends the
 * credentials (the sealed share password) to each host that uses the
 * backend, keeps status and capacity as each host sees them, and takes
 * rotation and removal to every one of them. */
#pragma once

#include <jansson.h>

#include "common/nq_error.h"
#include "common/secret.h"
#include "manager/services/registry.h"

struct manager;

#define BACKEND_HOSTS_MAX 64

/* The hosts backend_id is attached on, local first; *ret_n of them. */
int backend_hosts_list(struct manager *m, const char *backend_id,
	char ret_ids[BACKEND_HOSTS_MAX][64], size_t *ret_n);
/* After a create on host_id: the attachment row and, when there is a
 * password, the sealed secret. */
int backend_hosts_created(struct manager *m, const char *backend_id, const char *host_id,
	const struct secret *secret);
/* A new password for b on every attached host. The first reachable host
 * decides (a wrong password is refused there and nothing is stored); the
 * sealed secret is then replaced and each host that gets it records the
 * generation; a host that cannot be reached gets it when it returns
 * (backend_hosts_catch_up). */
int backend_hosts_rotate(struct manager *m, const struct backend *b, const void *cfg,
	const struct secret *secret, struct nq_error *err);
/* Switch b from old_cfg to new_cfg on every attached host (the first
 * reachable one decides, as for rotation); secret: a new password or NULL. */
int backend_hosts_reconfigure(struct manager *m, const struct backend *b,
	const void *old_cfg, const void *new_cfg, const struct secret *secret,
	struct nq_error *err);
/* Forget b on every attached host. Every attached host must answer first:
 * otherwise 409 host_unreachable naming it, and nothing is changed. */
int backend_hosts_detach_all(struct manager *m, const struct backend *b,
	struct nq_error *err);
/* Rotations a host missed while it was unreachable. */
void backend_hosts_catch_up(struct manager *m);
/* Per-host status and capacity of b (refresher); returns the worst into
 * *ret (the first host's capacity when all are ok). */
void backend_hosts_refresh(struct manager *m, const struct backend *b,
	struct backend_status *ret);
/* [{host_id, host_name, status, error, capacity}]; new reference. */
json_t *backend_hosts_json(struct manager *m, const char *backend_id);
