/* Allow-list validators for everything that crosses a trust boundary.
 * Pure functions: no I/O, no logging. On failure each fills *err with code
 * "invalid_field", the field name given by the caller, and a sentence that
 * says what is wrong, and returns -EINVAL. Output buffers are written only
 * on success. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/nq_error.h"

#define NQ_SERVER_MAX 256
#define NQ_SHARE_MAX 80
#define NQ_SUBDIR_MAX 1024
#define NQ_USER_MAX 256
#define NQ_DOMAIN_MAX 256
#define NQ_SECRET_MAX 1024
#define NQ_OPTS_MAX 1024
#define NQ_MAX_EXTRA_OPTS 32
#define NQ_UUID_LEN 36

/* Hostname (RFC 1123 labels), dotted IPv4, or IPv6 inside []. Canonical
 * form: hostname lowercased, IPv6 as inet_ntop prints it, in []. */
int validate_server(const char *field, const char *in, char *ret, size_t retsz,
	struct nq_error *err);
/* True when a canonical server is an IPv6 literal ("[...]"). */
bool server_is_ipv6(const char *canon);
/* SMB share name: 1..80 chars, printable, none of \ / : * ? " < > | ,
 * = ; [ ] + or control characters, not "." or "..", no leading/trailing
 * space. */
int validate_share(const char *field, const char *in, struct nq_error *err);
/* Relative path, components separated by '/', no "..", ".", empty or
 * absolute components, no backslash, control chars or ':'; "" is allowed
 * (no subdir). Canonical form has no leading/trailing/double slashes. */
int validate_subdir(const char *field, const char *in, char *ret, size_t retsz,
	struct nq_error *err);
/* "default", "2.0", "2.1", "3", "3.0", "3.11"; NULL or "" means default. */
int validate_smb_version(const char *field, const char *in, struct nq_error *err);
/* Lowercase canonical 8-4-4-4-12 hex UUID (upper case accepted, lowered). */
int validate_uuid(const char *field, const char *in, char ret[NQ_UUID_LEN + 1],
	struct nq_error *err);
/* Backend id: a UUID (canonicalised as above) or a slug of 1..36 of
 * [a-z0-9-] starting with a letter or digit, such as the manager's
 * built-in "localfile-default". Safe as a file name. */
int validate_backend_id(const char *field, const char *in, char ret[NQ_UUID_LEN + 1],
	struct nq_error *err);
/* Username / domain / password for a credentials file: no CR, LF, NUL;
 * length caps. Usernames and domains are also refused if they contain ','
 * or '=' or start with a space, since mount.cifs cannot carry them. */
int validate_username(const char *field, const char *in, struct nq_error *err);
int validate_domain(const char *field, const char *in, struct nq_error *err);
int validate_password(const char *field, const char *in, size_t len, struct nq_error *err);
/* Display names of backends, VMs: 1..64 of [A-Za-z0-9 ._-], starting with
 * an alphanumeric. */
int validate_name(const char *field, const char *in, struct nq_error *err);
/* Base image file names in the image dir: 1..128 of [A-Za-z0-9._-], not
 * starting with '.'. */
int validate_image_name(const char *field, const char *in, struct nq_error *err);

/* Extra mount options, parsed from "a,b=c,…". */
struct mount_opts {
	unsigned n;
	char *items[NQ_MAX_EXTRA_OPTS]; /* owned, canonical "key" or "key=value" */
	unsigned port;                  /* 0 unless port=N was given */
};
void mount_opts_release(struct mount_opts *o);
/* Parse and allow-list. Refuses options the backend manages (credentials,
 * user, password, domain, vers, guest, sec, ip, unc, prefixpath, multiuser,
 * uid, gid, file_mode, dir_mode, setuids, …), unknown options, control
 * characters, empty items and duplicate keys. port=N (1..65535) is kept in
 * ->port and also as an item. On success *ret is filled (release it). */
int validate_mount_options(const char *field, const char *in, struct mount_opts *ret,
	struct nq_error *err);
/* Join items with ',' into buf; -ENOSPC if it does not fit. */
int mount_opts_join(const struct mount_opts *o, char *buf, size_t bufsz);

/* Absolute, normalised path (no "..", ".", "//", trailing '/', control
 * chars) that lies at or below root (itself normalised). */
int validate_path_under(const char *field, const char *path, const char *root,
	struct nq_error *err);
