/* SMB mount drivers: the argv each driver runs and the classification of
 * its failure into the contract's error codes. Pure functions (no I/O),
 * golden-tested byte for byte in tests/golden/. */
#pragma once

#include <limits.h>

#include "common/nq_error.h"
#include "common/nq_spawn.h"
#include "common/smb_fields.h"
#include "common/validate.h"

/* What identifies one mount: two requests share a mount only when every
 * field here is equal. The password is not part of it (it is in the
 * credentials file of the backend that made the mount). */
struct smb_mount_spec {
	char server[NQ_SERVER_MAX + 1]; /* canonical (validate_server) */
	char share[NQ_SHARE_MAX + 1];
	char username[NQ_USER_MAX + 1]; /* "" = guest */
	char domain[NQ_DOMAIN_MAX + 1];
	char version[8];        /* "default", "2.0", … */
	struct mount_opts opts; /* validated extra options */
};

/* One SMB backend as the agent keeps it: the fields the manager sent
 * (described once in common/smb_fields.h and turned into the agent's types
 * by smb_backend_from_fields), in the mount request, the table's record
 * and the persisted record alike. Whoever holds it owns spec.opts. */
struct smb_backend {
	char id[NQ_UUID_LEN + 1];
	struct smb_mount_spec spec;
	char subdir[NQ_SUBDIR_MAX + 1];
	char mount_base[PATH_MAX];
};

/* The backend from the field table's values (common/smb_fields.h): the
 * mount options are parsed again into spec.opts (release with
 * smb_backend_release); subdir and mount_base as given. */
int smb_backend_from_fields(const struct smb_fields *f, const char *id,
	struct smb_backend *ret, struct nq_error *err);
/* And back, for a record or a reply. */
void smb_backend_to_fields(const struct smb_backend *b, struct smb_fields *ret);
/* Deep copy (dst's old spec is not released); -ENOMEM. */
int smb_backend_copy(const struct smb_backend *src, struct smb_backend *dst);
void smb_backend_release(struct smb_backend *b);

void smb_mount_spec_release(struct smb_mount_spec *s);
/* Deep copy; -ENOMEM. */
int smb_mount_spec_copy(const struct smb_mount_spec *src, struct smb_mount_spec *dst);
/* "//server/share" into buf. */
int smb_unc(const struct smb_mount_spec *s, char *buf, size_t bufsz);
/* Stable identity key ("server|share|user|domain|vers|opts"), for equality. */
int smb_spec_key(const struct smb_mount_spec *s, char *buf, size_t bufsz);

/* The VM-image defaults every mount gets. */
#define SMB_DEFAULT_OPTS                                                                  \
	"uid=0,gid=0,file_mode=0600,dir_mode=0700,nobrl,nodev,nosuid,noexec"
/* How long a request on a VM disk waits for a server that went away before
 * it fails (FUSE driver, soft mounts; extra option timeout= overrides). */
#define SMB_DEFAULT_GRACE_S 90

/* argv for the kernel driver:
 *   <program> //server/share <mount_point> -o <options>
 * options = credentials=<cred_path> (or guest), [domain=D,] [vers=V,]
 *           SMB_DEFAULT_OPTS, hard|soft, [ip=<addr>,] extra options in order.
 * hard unless the extra options ask for soft: kernel cifs' soft mounts
 * give up after about 10 s of outage and offer no longer grace. timeout=
 * is not a cifs option and is not passed. vers is omitted for "default"; ip= is added for IPv6 literals. The result
 * is a NULL-terminated array; free it with smb_argv_free. */
int smb_kernel_argv(const struct smb_mount_spec *s, const char *program,
	const char *cred_path, const char *mount_point, char ***ret);
/* argv for the FUSE driver (nqrust-smbfs):
 *   <program> //server/share <mount_point> -o <options>
 * options = credentials=<cred_path> (or guest), [domain=D,] [vers=V,]
 *           SMB_DEFAULT_OPTS, soft,timeout=<grace> (or hard),
 *           mount_timeout=<timeout_s>, io_deadline=<io_deadline_s>
 *           (unless 0: see lease_io_deadline_s), then the extra options that
 *           nqrust-smbfs understands (port, ro, rw, noperm, cache, actimeo);
 *           kernel-only tuning options are dropped. grace is the extra
 *           option timeout= or SMB_DEFAULT_GRACE_S. */
int smb_fuse_argv(const struct smb_mount_spec *s, const char *program,
	const char *cred_path, const char *mount_point, unsigned timeout_s,
	unsigned io_deadline_s, char ***ret);
void smb_argv_free(char **argv);

/* Classify a failed mount helper run (mount.cifs or nqrust-smbfs) from
 * "mount error(N)" in its stderr (not its exit status), a timeout, or a
 * resolver message. Fills err with one of smb_auth_failed (13),
 * smb_share_not_found (2, 6), smb_bad_option (22, 95, 93, 71),
 * smb_unreachable (111, 113, 101, 112, 104, "could not resolve"),
 * smb_timeout (110, or r->timed_out), smb_cred_missing (126, "credentials
 * file"), smb_not_writable (30), cifs_unavailable (19), or smb_mount_failed
 * otherwise. The message is an operator-actionable sentence naming the
 * server and share, and never quotes the helper's stderr verbatim beyond
 * the errno text. Returns N (or 0 when there was none). */
/* True for the errnos a broken SMB connection surfaces as (-errno in r,
 * through the kernel client or the FUSE bridge): such a failure during a
 * clone is smb_unreachable, not io_error. */
bool smb_conn_broken(int r);
int smb_classify_mount_error(const struct smb_mount_spec *s, const struct spawn_result *r,
	struct nq_error *err);
