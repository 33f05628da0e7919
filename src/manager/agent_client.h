/* The manager's client for the agent API (DESIGN.md §6), on libcurl:
 * "unix:PATH" (base URL http://agent over the socket) or "http://HOST:PORT"
 * with a bearer token. Thread-safe: every call uses its own easy handle. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/nq_error.h"

#define AGENT_REPLY_MAX (1024 * 1024)

struct agent_client;

/* spec: "unix:/run/nqrust/agent.sock" or "http://host:port". token may be
 * NULL (unix socket). The client keeps copies. */
int agent_client_new(const char *spec, const char *token, struct agent_client **ret);
/* Pin the certificate an https:// agent must present (any form
 * tls_fingerprint_parse takes); an https client without a pin refuses
 * every call. -EINVAL for a malformed fingerprint. */
int agent_client_set_pin(struct agent_client *a, const char *fingerprint);
/* Another reference (returns a); agent_client_free drops one and frees
 * with the last. */
struct agent_client *agent_client_ref(struct agent_client *a);
void agent_client_free(struct agent_client *a);

struct agent_reply {
	int status;   /* HTTP status, 0 when no reply arrived */
	json_t *json; /* owned; NULL for an empty or non-JSON body */
};
void agent_reply_release(struct agent_reply *r);

/* One request. body (may be NULL) is sent as application/json and is not
 * copied: a caller sending a password wipes its buffer afterwards.
 * Returns 0 for a 2xx reply (*ret filled). Otherwise returns <0 with err
 * filled and *ret still filled with what arrived:
 *  - no connection / timeout, or a non-2xx reply without a well-formed
 *    error body: -EHOSTUNREACH, code agent_unavailable (timeouts also set
 *    ret->status = 0);
 *  - https: a certificate other than the pinned one: -EPERM, code
 *    agent_fingerprint_mismatch (nothing was sent); HTTP 401: -EACCES,
 *    agent_auth_failed;
 *  - 4xx or 5xx with the agent's error body: -EREMOTEIO, the agent's own
 *    {code, message, field} (no_space stays no_space, and so on). */
int agent_call(struct agent_client *a, const char *method, const char *path,
	const char *body, size_t body_len, long timeout_ms, struct agent_reply *ret,
	struct nq_error *err);

/* agent_call with extras (x may be NULL): the transfer is aborted as soon
 * as *x->abort turns true (shutdown of a long poll), and x->generation
 * gets the reply's X-Generation header (-1 when absent). */
struct agent_call_ext {
	const bool *abort;
	long long generation;
	/* raw: a 2xx body is handed over as bytes (raw_body, caller frees;
	 * NULL when empty) instead of parsed; X-Offset and X-Next-Offset of
	 * the console routes (-1 when absent). */
	bool raw;
	char *raw_body;
	size_t raw_len;
	long long offset, next_offset;
};
int agent_call_ext(struct agent_client *a, const char *method, const char *path,
	const char *body, size_t body_len, long timeout_ms, struct agent_call_ext *x,
	struct agent_reply *ret, struct nq_error *err);
