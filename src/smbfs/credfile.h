/* Parser for mount.cifs-style credentials files:
 *
 *   username=VALUE
 *   password=VALUE
 *   domain=VALUE
 *
 * VALUE is everything after the first '=' up to the end of the line,
 * verbatim (a password may contain ',', '=', quotes, '$' and spaces).
 * Keys may be abbreviated the way mount.cifs accepts them (user, pass,
 * dom); leading blanks before the key are skipped; other lines are
 * ignored. The password is wiped from every buffer this module touches. */
#pragma once

#include <stddef.h>

/* Everything is owned by the struct; release with smb_creds_release. */
struct smb_creds {
	char *username; /* NULL when absent */
	char *domain;   /* NULL when absent */
	char *password; /* NULL when absent; wiped on release */
	size_t password_len;
};

/* Largest credentials file we read; anything bigger is not one. */
#define CREDFILE_MAX_BYTES (64 * 1024)

/* Read and parse path into *ret (written only on success). Returns 0, or
 * -errno: the open/read error, -EFBIG when over CREDFILE_MAX_BYTES,
 * -ENOMEM. */
int credfile_read(const char *path, struct smb_creds *ret);

/* Parse an in-memory buffer (len bytes, need not be NUL-terminated). */
int credfile_parse(const char *buf, size_t len, struct smb_creds *ret);

/* Wipe and free every field; the struct is zeroed. NULL-safe. */
void smb_creds_release(struct smb_creds *c);
