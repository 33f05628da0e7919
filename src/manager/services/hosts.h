/* VM hosts: one row per agent (hosts table). The built-in host "local" is
 * the manager's --agent; other hosts are enrolled over TLS with a pinned
 * certificate and a bearer token kept sealed (auth/sealed.h). The
 * refresher's heartbeat keeps each row's status and figures current;
 * requests read the database only. Placement (hosts_place) picks a host
 * for a VM and attaches its backend there on first use. */
#pragma once

#include <jansson.h>
#include <stdbool.h>

#include "common/nq_error.h"

struct manager;

#define HOST_LOCAL_ID "local"
#define HOST_ID_MAX 63
#define HOST_NAME_MAX_LEN 63
#define HOST_TOKEN_MIN 16
#define HOST_TOKEN_MAX 512

struct place_req {
	const char *vm_id;      /* NULL for a new VM; its own memory is not counted */
	const char *backend_id; /* the VM's backend */
	unsigned memory_mib;
	const char *host_id;         /* explicit choice, or NULL for automatic */
	const char *exclude_host_id; /* HA/migration: never this host, or NULL */
	/* Boot files the host's image dir must hold (placement.h): a new
	 * VM's base image (a kernel for it is then needed too), or NULL; a
	 * moving VM's kernel and initrd, or NULL / "". */
	const char *image_id;
	const char *kernel;
	const char *initrd;
};
/* A host for q, with the backend attached there (attach on first use).
 * 422 host_unsuitable (explicit host_id) / no_host with the reason. */
int hosts_place(struct manager *m, const struct place_req *q, char ret_host_id[64],
	struct nq_error *err);
/* Ensure backend_id is attached (credentials + mount) on host_id. */
int hosts_attach_backend(struct manager *m, const char *backend_id, const char *host_id,
	struct nq_error *err);
/* Host status from the DB: "ok", "unreachable", "draining"; unreachable_since (0 if
 * reachable) and lease_seconds. -ENOENT for an unknown host. */
struct host_state {
	char status[16];
	long long unreachable_since, last_seen;
	int lease_seconds;
};
int hosts_get_state(struct manager *m, const char *host_id, struct host_state *ret);

/* The row of the built-in host (id/name "local", agent_url = --agent),
 * created or updated at start. */
int hosts_ensure_local(struct manager *m);
/* Ask every host's agent for GET /v1/host at once and record the answers
 * (status, figures, last_seen, unreachable_since, last_error). One dead
 * host costs its own short timeout, not the others'. */
void hosts_heartbeat_all(struct manager *m);

/* POST /v1/hosts. */
struct host_new {
	const char *name;
	const char *agent_url;
	const char *token;       /* not copied; the caller wipes it */
	const char *fingerprint; /* NULL: trust on first use */
};
int hosts_enroll(struct manager *m, const struct host_new *h, char ret_id[64],
	struct nq_error *err);
int hosts_set_draining(struct manager *m, const char *id, bool draining,
	struct nq_error *err);
int hosts_delete(struct manager *m, const char *id, struct nq_error *err);
/* Every host / one host as the API shows it (DB only); new reference,
 * NULL on a database error (or, for one host, err not_found). */
json_t *hosts_list_json(struct manager *m);
json_t *hosts_get_json(struct manager *m, const char *id, struct nq_error *err);
/* The host's name (for VM JSON); "" when unknown. */
void hosts_name(struct manager *m, const char *id, char *buf, size_t sz);
