/* The SMB backend's field table: parsing, canonical forms, the secret,
 * the rules between fields, JSON both ways, change comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/smb_fields.h"

static json_t *
obj(const char *text)
{
	json_error_t je;
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);

	assert_non_null(o);
	return o;
}

/* The secret points into the object: the last one parsed is kept until
 * the next call. */
static int
parse(const char *text, unsigned allow, struct smb_fields *f, const char **secret,
	struct nq_error *err)
{
	static const char *const skip[] = { "backend_id", NULL };
	static json_t *last;

	json_decref(last);
	last = obj(text);
	return smb_fields_from_json(last, "config.", allow, skip, f, secret, err);
}

static void
test_table_is_consistent(void **state)
{
	size_t stored = 0;

	(void)state;
	for (size_t i = 0; i < smb_fields_count; i++) {
		const struct smb_field *d = &smb_fields_table[i];

		assert_ptr_equal(smb_field_find(d->name), d);
		assert_non_null(d->check);
		if (d->flags & SMB_F_SECRET) {
			assert_int_equal(d->size, 0);
			assert_false(d->flags & SMB_F_AGENT); /* never sent to mount */
		} else {
			assert_true(d->offset + d->size <= sizeof(struct smb_fields));
			stored += d->size;
		}
	}
	assert_int_equal(stored, sizeof(struct smb_fields));
	assert_null(smb_field_find("bogus"));
}

static void
test_parse_canonicalises(void **state)
{
	struct smb_fields f = { 0 };
	struct nq_error err = { 0 };
	const char *pw = NULL;

	(void)state;
	assert_int_equal(
		parse("{\"server\":\"NAS.Example.COM\",\"share\":\"vms\","
		      "\"username\":\"alice\",\"password\":\"s3cr,=t\","
		      "\"smb_version\":\"default\",\"subdir\":\"a/b/\","
		      "\"mount_options\":\"port=4450,hard\",\"backend_id\":\"x\"}",
			~0u, &f, &pw, &err),
		0);
	assert_string_equal(f.server, "nas.example.com");
	assert_string_equal(f.share, "vms");
	assert_string_equal(f.username, "alice");
	assert_string_equal(f.smb_version, "");
	assert_string_equal(f.subdir, "a/b");
	assert_string_equal(f.mount_options, "port=4450,hard");
	assert_string_equal(pw, "s3cr,=t");
	assert_int_equal(smb_fields_check(&f, "config.", &err), 0);
}

static void
test_refusals_name_the_field(void **state)
{
	struct smb_fields f = { 0 };
	struct nq_error err = { 0 };
	const char *pw = NULL;

	(void)state;
	assert_true(parse("{\"server\":\"a\",\"bogus\":\"x\"}", ~0u, &f, &pw, &err) < 0);
	assert_string_equal(err.code, "unknown_field");
	assert_string_equal(err.field, "config.bogus");
	memset(&err, 0, sizeof err);
	assert_true(parse("{\"share\":5}", ~0u, &f, &pw, &err) < 0);
	assert_string_equal(err.field, "config.share");
	memset(&err, 0, sizeof err);
	assert_true(parse("{\"share\":\"a\\u0000b\"}", ~0u, &f, &pw, &err) < 0);
	assert_string_equal(err.field, "config.share");
	memset(&err, 0, sizeof err);
	assert_true(parse("{\"server\":\"\"}", ~0u, &f, &pw, &err) < 0);
	assert_string_equal(err.code, "missing_field");
	assert_string_equal(err.field, "config.server");
	memset(&err, 0, sizeof err);
	assert_true(parse("{\"mount_options\":\"password=x\"}", ~0u, &f, &pw, &err) < 0);
	assert_string_equal(err.field, "config.mount_options");
	memset(&err, 0, sizeof err);
	assert_true(parse("{\"mount_base\":\"rel/ative\"}", ~0u, &f, &pw, &err) < 0);
	assert_string_equal(err.field, "config.mount_base");
	/* The secret is not allowed where the caller does not allow it. */
	memset(&err, 0, sizeof err);
	assert_true(parse("{\"password\":\"x\"}", SMB_F_AGENT, &f, &pw, &err) < 0);
	assert_string_equal(err.field, "config.password");
	/* Nothing was written by the failed parses. */
	assert_string_equal(f.server, "");
}

static void
test_rules_between_fields(void **state)
{
	struct smb_fields f = { 0 };
	struct nq_error err = { 0 };

	(void)state;
	assert_true(smb_fields_check(&f, "config.", &err) < 0);
	assert_string_equal(err.field, "config.server");
	snprintf(f.server, sizeof f.server, "nas");
	snprintf(f.share, sizeof f.share, "vms");
	snprintf(f.domain, sizeof f.domain, "CORP");
	memset(&err, 0, sizeof err);
	assert_true(smb_fields_check(&f, "config.", &err) < 0);
	assert_string_equal(err.field, "config.domain");
	snprintf(f.username, sizeof f.username, "alice");
	assert_int_equal(smb_fields_check(&f, "", &err), 0);
}

static void
test_json_and_compare(void **state)
{
	struct smb_fields a = { 0 }, b;
	json_t *o;

	(void)state;
	snprintf(a.server, sizeof a.server, "nas");
	snprintf(a.share, sizeof a.share, "vms");
	o = smb_fields_to_json(&a, 0, false);
	assert_string_equal(json_string_value(json_object_get(o, "smb_version")),
		"default");
	assert_string_equal(json_string_value(json_object_get(o, "domain")), "");
	assert_null(json_object_get(o, "password"));
	json_decref(o);
	o = smb_fields_to_json(&a, SMB_F_AGENT, true);
	assert_int_equal(json_object_size(o), 2);
	json_decref(o);

	b = a;
	assert_false(smb_fields_differ(&a, &b, SMB_F_REMOUNT | SMB_F_CREDS));
	snprintf(b.domain, sizeof b.domain, "CORP");
	assert_true(smb_fields_differ(&a, &b, SMB_F_CREDS));
	b = a;
	snprintf(b.mount_options, sizeof b.mount_options, "hard");
	assert_true(smb_fields_differ(&a, &b, SMB_F_REMOUNT));
	assert_false(smb_fields_differ(&a, &b, SMB_F_CREDS));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_is_consistent),
		cmocka_unit_test(test_parse_canonicalises),
		cmocka_unit_test(test_refusals_name_the_field),
		cmocka_unit_test(test_rules_between_fields),
		cmocka_unit_test(test_json_and_compare),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
