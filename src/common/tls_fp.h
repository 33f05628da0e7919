/* TLS certificate fingerprints as the agent link writes and compares them:
 * SHA-256 over the certificate's DER, 32 upper-case hex pairs joined by
 * ':' (what `openssl x509 -noout -fingerprint -sha256` prints after '=').
 * Pure code: no TLS library, no I/O, no logging. */
#pragma once

#include <stdint.h>

#include "common/nq_error.h"

/* 32 pairs, 31 colons, the NUL. */
#define TLS_FP_LEN 95
#define TLS_FP_SIZE 96

/* Write the canonical form of the digest sha into out. */
void tls_fingerprint_format(const uint8_t sha[32], char out[TLS_FP_SIZE]);

/* Parse a fingerprint given by a user: 64 hex digits in any case, either
 * without separators or with ':' between every pair, surrounding blanks
 * ignored. On success writes the canonical form to out and returns 0; else
 * -EINVAL with err naming the field "fingerprint". out is written only on
 * success. */
int tls_fingerprint_parse(const char *in, char out[TLS_FP_SIZE], struct nq_error *err);
