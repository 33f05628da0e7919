/* The credential store: one mount.cifs-format file per backend,
 * <cred_dir>/<backend-uuid>.cred, mode 0600, replaced atomically. The
 * backend id must already be a validated UUID. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/secret.h"
#include "agent/agent.h"

/* Write username, password (len bytes, may hold any byte but CR, LF, NUL)
 * and optional domain. The buffer holding the file content is wiped. */
int credstore_put(struct agent *a, const char *backend_id, const char *username,
	const char *password, size_t password_len, const char *domain);
/* Rotation: the new credentials go to <id>.cred.new first (same format,
 * same care), are checked against the server, and only then renamed over
 * <id>.cred; a failed check drops the new file and leaves the old one
 * exactly as it was. */
int credstore_put_pending(struct agent *a, const char *backend_id, const char *username,
	const char *password, size_t password_len, const char *domain);
int credstore_pending_path(const struct agent *a, const char *backend_id, char *buf,
	size_t bufsz);
int credstore_pending_commit(struct agent *a, const char *backend_id);
void credstore_pending_drop(struct agent *a, const char *backend_id);
/* Idempotent: 0 when the file is gone afterwards. */
int credstore_delete(struct agent *a, const char *backend_id);
/* The whole file as a secret (caller frees); -ENOENT when missing. */
int credstore_read(struct agent *a, const char *backend_id, struct secret **ret);
/* Absolute path of the file (for mount.cifs credentials=). */
int credstore_path(const struct agent *a, const char *backend_id, char *buf, size_t bufsz);
