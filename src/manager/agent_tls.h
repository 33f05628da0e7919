/* TLS to an enrolled agent, verified only by the pinned SHA-256
 * fingerprint of its leaf certificate (common/tls_fp.h form). The check
 * runs inside the handshake (an OpenSSL certificate verify callback), so a
 * request — and the bearer token in it — is never sent to a certificate
 * other than the pinned one. Hostname and CA chain checks are off: the pin
 * replaces them. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/nq_error.h"
#include "common/tls_fp.h"

struct agent_pin {
	char want[TLS_FP_SIZE]; /* canonical; "" with probe */
	char seen[TLS_FP_SIZE]; /* what the peer presented; "" before the handshake */
	bool probe;             /* accept any certificate, only record it */
	bool mismatch;          /* the handshake was refused for the pin */
};

/* Record the digest of the presented certificate in p->seen and decide:
 * true to go on (probe, or seen == want). Pure. */
bool agent_pin_check(struct agent_pin *p, const uint8_t sha[32]);
/* Make handle c verify the peer by p (which must outlive the transfer). */
int agent_tls_setup(CURL *c, struct agent_pin *p);
/* The fingerprint the agent at url (https://HOST:PORT) presents, learned
 * by a handshake alone: nothing is sent after it. -EHOSTUNREACH with err
 * agent_unavailable when no handshake completes. */
int agent_tls_probe(const char *url, long timeout_ms, char ret_fp[TLS_FP_SIZE],
	struct nq_error *err);
