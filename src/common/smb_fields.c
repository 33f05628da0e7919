/* The SMB backend's field table; see smb_fields.h. */
#include "common/smb_fields.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Copy v when it fits; "too long" otherwise. */
static int
copy_checked(const char *field, const char *v, char *out, size_t outsz,
	struct nq_error *err)
{
	if (strlen(v) >= outsz)
		return nq_error_set(err, "invalid_field", field, "%s is too long", field);
	memcpy(out, v, strlen(v) + 1);
	return 0;
}

static int
check_server(const char *field, const char *v, char *out, size_t outsz,
	struct nq_error *err)
{
	return validate_server(field, v, out, outsz, err);
}

static int
check_share(const char *field, const char *v, char *out, size_t outsz, struct nq_error *err)
{
	int r = validate_share(field, v, err);

	return r < 0 ? r : copy_checked(field, v, out, outsz, err);
}

static int
check_username(const char *field, const char *v, char *out, size_t outsz,
	struct nq_error *err)
{
	int r = validate_username(field, v, err);

	return r < 0 ? r : copy_checked(field, v, out, outsz, err);
}

static int
check_domain(const char *field, const char *v, char *out, size_t outsz,
	struct nq_error *err)
{
	int r = validate_domain(field, v, err);

	return r < 0 ? r : copy_checked(field, v, out, outsz, err);
}

/* "default" is stored as unset. */
static int
check_version(const char *field, const char *v, char *out, size_t outsz,
	struct nq_error *err)
{
	int r = validate_smb_version(field, v, err);

	if (r < 0)
		return r;
	return copy_checked(field, strcmp(v, "default") == 0 ? "" : v, out, outsz, err);
}

static int
check_subdir(const char *field, const char *v, char *out, size_t outsz,
	struct nq_error *err)
{
	return validate_subdir(field, v, out, outsz, err);
}

/* Stored canonical: the allow-listed items joined again. */
static int
check_options(const char *field, const char *v, char *out, size_t outsz,
	struct nq_error *err)
{
	struct mount_opts o = { 0 };
	int r = validate_mount_options(field, v, &o, err);

	if (r < 0)
		return r;
	r = mount_opts_join(&o, out, outsz);
	mount_opts_release(&o);
	if (r < 0)
		return nq_error_set(err, "invalid_field", field, "%s is too long", field);
	return 0;
}

/* Absolute and normalised; the agent also confines it below its root. */
static int
check_mount_base(const char *field, const char *v, char *out, size_t outsz,
	struct nq_error *err)
{
	int r;

	if (strlen(v) >= outsz)
		return nq_error_set(err, "invalid_field", field, "%s is too long", field);
	r = validate_path_under(field, v, "/", err);
	return r < 0 ? r : copy_checked(field, v, out, outsz, err);
}

static int
check_password(const char *field, const char *v, char *out, size_t outsz,
	struct nq_error *err)
{
	(void)out;
	(void)outsz;
	return validate_password(field, v, strlen(v), err);
}

#define STORED(n) offsetof(struct smb_fields, n), sizeof(((struct smb_fields *)0)->n)

const struct smb_field smb_fields_table[] = {
	{ "server", STORED(server), SMB_F_REQUIRED | SMB_F_REMOUNT | SMB_F_AGENT, NULL,
		check_server },
	{ "share", STORED(share), SMB_F_REQUIRED | SMB_F_REMOUNT | SMB_F_AGENT, NULL,
		check_share },
	{ "username", STORED(username), SMB_F_REMOUNT | SMB_F_CREDS | SMB_F_AGENT, NULL,
		check_username },
	{ "password", 0, 0, SMB_F_SECRET | SMB_F_CREDS, NULL, check_password },
	{ "domain", STORED(domain), SMB_F_REMOUNT | SMB_F_CREDS | SMB_F_AGENT, NULL,
		check_domain },
	{ "smb_version", STORED(smb_version), SMB_F_REMOUNT | SMB_F_AGENT, "default",
		check_version },
	{ "subdir", STORED(subdir), SMB_F_REMOUNT | SMB_F_AGENT, NULL, check_subdir },
	{ "mount_options", STORED(mount_options), SMB_F_REMOUNT | SMB_F_AGENT, NULL,
		check_options },
	{ "mount_base", STORED(mount_base), SMB_F_REMOUNT | SMB_F_AGENT, NULL,
		check_mount_base },
};
const size_t smb_fields_count = sizeof smb_fields_table / sizeof smb_fields_table[0];

const struct smb_field *
smb_field_find(const char *name)
{
	for (size_t i = 0; i < smb_fields_count; i++)
		if (strcmp(smb_fields_table[i].name, name) == 0)
			return &smb_fields_table[i];
	return NULL;
}

const char *
smb_field_get(const struct smb_fields *f, const struct smb_field *d)
{
	return d->size ? (const char *)f + d->offset : NULL;
}

int
smb_field_set(struct smb_fields *f, const struct smb_field *d, const char *prefix,
	const char *v, struct nq_error *err)
{
	char field[64], *out = (char *)f + d->offset;

	snprintf(field, sizeof field, "%s%s", prefix ? prefix : "", d->name);
	if (!d->size)
		return -EINVAL; /* the secret is never stored */
	if (!v || !*v) {
		if (d->flags & SMB_F_REQUIRED)
			return nq_error_set(err, "missing_field", field, "%s is required",
				field);
		out[0] = '\0';
		return 0;
	}
	return d->check(field, v, out, d->size, err);
}

static bool
skipped(const char *key, const char *const *skip)
{
	for (; skip && *skip; skip++)
		if (strcmp(*skip, key) == 0)
			return true;
	return false;
}

/* The string value of one key (null = ""), or an error naming it. */
static int
string_value(json_t *val, const char *field, const char **ret, struct nq_error *err)
{
	if (json_is_null(val)) {
		*ret = "";
		return 0;
	}
	if (!json_is_string(val))
		return nq_error_set(err, "invalid_field", field, "%s must be a string",
			field);
	if (strlen(json_string_value(val)) != json_string_length(val))
		return nq_error_set(err, "invalid_field", field,
			"%s must not contain NUL characters", field);
	*ret = json_string_value(val);
	return 0;
}

int
smb_fields_from_json(json_t *obj, const char *prefix, unsigned allow,
	const char *const *skip, struct smb_fields *f, const char **ret_secret,
	struct nq_error *err)
{
	struct smb_fields tmp = *f;
	const char *key, *v = "", *secret = NULL;
	json_t *val;
	int r;

	if (!json_is_object(obj))
		return nq_error_set(err, "invalid_field",
			prefix && *prefix ? "config" : NULL, "expected a JSON object");
	json_object_foreach(obj, key, val) {
		const struct smb_field *d = smb_field_find(key);
		char field[64];

		if (skipped(key, skip))
			continue;
		snprintf(field, sizeof field, "%s%.40s", prefix ? prefix : "", key);
		if (!d || !(d->flags & allow))
			return nq_error_set(err, "unknown_field", field,
				"unknown field '%s'", field);
		if ((r = string_value(val, field, &v, err)) < 0)
			return r;
		if (d->flags & SMB_F_SECRET) {
			if (*v && (r = d->check(field, v, NULL, 0, err)) < 0)
				return r;
			secret = *v ? v : NULL;
		} else if ((r = smb_field_set(&tmp, d, prefix, v, err)) < 0) {
			return r;
		}
	}
	*f = tmp;
	if (ret_secret)
		*ret_secret = secret;
	return 0;
}

int
smb_fields_check(const struct smb_fields *f, const char *prefix, struct nq_error *err)
{
	const char *p = prefix ? prefix : "";

	for (size_t i = 0; i < smb_fields_count; i++) {
		const struct smb_field *d = &smb_fields_table[i];
		char field[64];

		if (!(d->flags & SMB_F_REQUIRED) || smb_field_get(f, d)[0])
			continue;
		snprintf(field, sizeof field, "%s%s", p, d->name);
		return nq_error_set(err, "missing_field", field, "%s is required", field);
	}
	if (f->domain[0] && !f->username[0]) {
		char field[64];

		snprintf(field, sizeof field, "%sdomain", p);
		return nq_error_set(err, "invalid_field", field, "%s needs %susername",
			field, p);
	}
	return 0;
}

json_t *
smb_fields_to_json(const struct smb_fields *f, unsigned mask, bool omit_unset)
{
	json_t *o = json_object();

	for (size_t i = 0; o && i < smb_fields_count; i++) {
		const struct smb_field *d = &smb_fields_table[i];
		const char *v = smb_field_get(f, d);

		if (!v || (mask && !(d->flags & mask)) || (omit_unset && !*v))
			continue;
		if (!*v && d->unset_as)
			v = d->unset_as;
		if (json_object_set_new(o, d->name, json_string(v)) < 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

bool
smb_fields_differ(const struct smb_fields *a, const struct smb_fields *b, unsigned mask)
{
	for (size_t i = 0; i < smb_fields_count; i++) {
		const struct smb_field *d = &smb_fields_table[i];

		if (d->size && (d->flags & mask) &&
			strcmp(smb_field_get(a, d), smb_field_get(b, d)) != 0)
			return true;
	}
	return false;
}
