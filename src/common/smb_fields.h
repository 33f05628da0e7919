/* The fields of an SMB backend, described once.
 *
 * One table (smb_fields_table) says, for every field: its name, where it
 * lives in struct smb_fields, how long it may be, how it is validated and
 * canonicalised, and what it is: required, the secret (never stored),
 * part of the mount's identity (changing it needs a new mount), part of
 * the credentials file, sent to the agent. The manager's config parsing,
 * JSON, change comparison and the body of the agent's mount request, and
 * the agent's parsing of that request, all walk this table: a new field is
 * one line here. Pure code: no I/O, no logging. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/nq_error.h"
#include "common/validate.h"

#define SMB_MOUNT_BASE_MAX 1024

/* Canonical values; "" means unset (smb_version "" = default). */
struct smb_fields {
	char server[NQ_SERVER_MAX + 3];
	char share[NQ_SHARE_MAX + 1];
	char username[NQ_USER_MAX + 1];
	char domain[NQ_DOMAIN_MAX + 1];
	char smb_version[8];
	char subdir[NQ_SUBDIR_MAX + 1];
	char mount_options[NQ_OPTS_MAX + 1];
	char mount_base[SMB_MOUNT_BASE_MAX];
};

enum smb_field_flag {
	SMB_F_REQUIRED = 1u << 0, /* must not be empty */
	SMB_F_SECRET = 1u << 1,   /* the password: validated, never stored */
	SMB_F_REMOUNT = 1u << 2,  /* part of the mount: a change remounts */
	SMB_F_CREDS = 1u << 3,    /* part of the credentials file */
	SMB_F_AGENT = 1u << 4,    /* carried in the agent's mount request */
};

struct smb_field {
	const char *name;
	size_t offset, size; /* in struct smb_fields; size 0 for the secret */
	unsigned flags;
	/* What JSON shows for an unset value (NULL: ""). */
	const char *unset_as;
	/* Validate v (not empty) and write its canonical form to out. */
	int (*check)(const char *field, const char *v, char *out, size_t outsz,
		struct nq_error *err);
};

extern const struct smb_field smb_fields_table[];
extern const size_t smb_fields_count;

/* The field called name, or NULL. */
const struct smb_field *smb_field_find(const char *name);

/* The stored value of d in f ("" when unset); NULL for the secret. */
const char *smb_field_get(const struct smb_fields *f, const struct smb_field *d);

/* Validate v for d and store its canonical form in f ("" unsets an
 * optional field). prefix names the field in errors ("config." makes
 * "config.share"). Not for the secret. */
int smb_field_set(struct smb_fields *f, const struct smb_field *d, const char *prefix,
	const char *v, struct nq_error *err);

/* Parse a JSON object onto f (which holds the values to start from). Keys
 * must be fields whose flags intersect allow, or appear in skip (NULL-
 * terminated; the caller reads those itself); values are strings or null
 * (= unset). The secret, when allowed and not empty, is validated and
 * returned in *ret_secret, pointing into obj. f is written only on
 * success. */
int smb_fields_from_json(json_t *obj, const char *prefix, unsigned allow,
	const char *const *skip, struct smb_fields *f, const char **ret_secret,
	struct nq_error *err);

/* The rules between fields: server and share set, a domain only with a
 * username. */
int smb_fields_check(const struct smb_fields *f, const char *prefix, struct nq_error *err);

/* A new object with the stored fields whose flags intersect mask (0: all
 * stored fields); unset ones as their unset_as, or left out when
 * omit_unset. NULL on allocation failure. */
json_t *smb_fields_to_json(const struct smb_fields *f, unsigned mask, bool omit_unset);

/* Whether a stored field whose flags intersect mask differs. */
bool smb_fields_differ(const struct smb_fields *a, const struct smb_fields *b,
	unsigned mask);
