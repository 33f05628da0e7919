/* The TLS identity of the agent's TCP listener: the certificate and key
 * given by --tls-cert/--tls-key, or a self-signed ECDSA P-256 pair that the
 * agent generates in <state_dir>/tls/ on first start and reuses after.
 * Everything here runs once at start, before the listener opens. */
#pragma once

#include <stddef.h>

#include "common/tls_fp.h"
#include "agent/agent.h"

#define AGENT_TLS_DIR "tls"
#define AGENT_TLS_CERT "agent-cert.pem"
#define AGENT_TLS_KEY "agent-key.pem"
#define AGENT_TLS_PEM_MAX (64 * 1024)

/* PEM texts (NUL-terminated, owned). key_pem is a secret: agent_tls_release
 * wipes it. */
struct agent_tls {
	char *cert_pem;
	char *key_pem;
	size_t key_len;
	char fingerprint[TLS_FP_SIZE];
};

/* Load the configured pair, or the generated one (generating it first when
 * <state_dir>/tls/agent-cert.pem does not exist yet), check that both parse
 * and belong together, and compute the fingerprint. Logs what went wrong,
 * naming the file. */
int agent_tls_load(struct agent *a, struct agent_tls *ret);
void agent_tls_release(struct agent_tls *t);

/* tls_gen.c: a self-signed ECDSA P-256 certificate for host_name (CN and
 * SAN DNS), valid 10 years, random serial, CA:FALSE, digitalSignature,
 * serverAuth; key then certificate written atomically into dirfd (key 0600,
 * certificate 0644). */
int agent_tls_generate(int dirfd, const char *host_name);
