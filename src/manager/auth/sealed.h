/* Sealed secrets: agent tokens and share passwords the manager must keep
 * (a host that joins later is attached on first use; a rotation reaches a
 * host that was down) are stored only as AES-256-GCM ciphertext in the
 * `secrets` table. The key is a 32-byte file outside the database
 * (--secret-key-file, 0600); every manager on one database shares it.
 * A sealed value is base64(nonce[12] || ciphertext || tag[16]) and is
 * bound to its record id by the AAD, so a value copied to another row does
 * not open. */
#pragma once

#include <stddef.h>

#include "common/secret.h"

#define SEALED_KEY_LEN 32

struct sealed_key {
	unsigned char k[SEALED_KEY_LEN];
};

/* Read the key at path; create it (32 random bytes, 0600, O_EXCL) when
 * the file does not exist. -EINVAL when the file is not exactly 32 bytes
 * or is readable by group or others. */
int sealed_key_load(const char *path, struct sealed_key *ret);
/* Seal len bytes of pt bound to aad; *ret_b64 is a NUL-terminated string
 * (caller frees). */
int sealed_seal(const struct sealed_key *k, const char *aad, const void *pt, size_t len,
	char **ret_b64);
/* Open a sealed value; -EBADMSG when the key, the aad or the value is
 * wrong (tampered). *ret is a new secret (caller frees). */
int sealed_open(const struct sealed_key *k, const char *aad, const char *b64,
	struct secret **ret);
