/* The credential store: one mount.cifs-format file per backend,
 * <cred_dir>/<backend-uuid>.cred, mode 0600, replaced atomically. The
 * backend id must already be a validated UUID. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "../common/secret.h"
#include "agent.h"

/* Write username, password (len bytes, may hold any byte but CR, LF, NUL)
 * and optional domain. The buffer holding the file content is wiped. */
int credstore_put(struct agent *a, const char *backend_id, const char *username,
	const char *password, size_t password_len, const char *domain);
/* Idempotent: 0 when the file is gone afterwards. */
int credstore_delete(struct agent *a, const char *backend_id);
/* The whole file as a secret (caller frees); -ENOENT when missing. */
int credstore_read(struct agent *a, const char *backend_id, struct secret **ret);
/* Absolute path of the file (for mount.cifs credentials=). */
int credstore_path(const struct agent *a, const char *backend_id, char *buf,
	size_t bufsz);
