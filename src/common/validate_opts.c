/* Extra mount options: parse "a,b=c,…" and allow-list each item. Split
 * from validate.c; same contract (validate.h). */
#include "common/validate.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/validate_internal.h"

/* ---- mount options ---- */

enum opt_type { OPT_FLAG, OPT_NUM, OPT_CACHE, OPT_CHARSET };

static const struct opt_rule {
	const char *key;
	enum opt_type type;
	unsigned long min, max;
} opt_rules[] = {
	{ "port", OPT_NUM, 1, 65535 },
	{ "rsize", OPT_NUM, 1024, 16777216 },
	{ "wsize", OPT_NUM, 1024, 16777216 },
	{ "actimeo", OPT_NUM, 0, 86400 },
	{ "acregmax", OPT_NUM, 0, 86400 },
	{ "acdirmax", OPT_NUM, 0, 86400 },
	{ "echo_interval", OPT_NUM, 1, 600 },
	/* soft mounts: seconds a request waits for a lost server (FUSE) */
	{ "timeout", OPT_NUM, 1, 3600 },
	{ "max_credits", OPT_NUM, 20, 60000 },
	{ "cache", OPT_CACHE, 0, 0 },
	{ "iocharset", OPT_CHARSET, 0, 0 },
	{ "ro", OPT_FLAG, 0, 0 },
	{ "rw", OPT_FLAG, 0, 0 },
	{ "hard", OPT_FLAG, 0, 0 },
	{ "soft", OPT_FLAG, 0, 0 },
	{ "noperm", OPT_FLAG, 0, 0 },
	{ "noserverino", OPT_FLAG, 0, 0 },
	{ "serverino", OPT_FLAG, 0, 0 },
	{ "mfsymlinks", OPT_FLAG, 0, 0 },
	{ "nounix", OPT_FLAG, 0, 0 },
	{ "nosharesock", OPT_FLAG, 0, 0 },
	{ "seal", OPT_FLAG, 0, 0 },
	{ "handlecache", OPT_FLAG, 0, 0 },
	{ "nohandlecache", OPT_FLAG, 0, 0 },
	{ "noatime", OPT_FLAG, 0, 0 },
	{ "relatime", OPT_FLAG, 0, 0 },
	{ "resilienthandles", OPT_FLAG, 0, 0 },
	{ "persistenthandles", OPT_FLAG, 0, 0 },
};

/* Options the backend sets itself (credentials, identity, protocol, the
 * source address, ownership and the security defaults). */
static const char *const managed_opts[] = {
	"username",
	"user",
	"password",
	"password2",
	"pass",
	"credentials",
	"cred",
	"domain",
	"dom",
	"workgroup",
	"vers",
	"guest",
	"sec",
	"ip",
	"addr",
	"unc",
	"prefixpath",
	"multiuser",
	"setuids",
	"nosetuids",
	"suid",
	"uid",
	"gid",
	"forceuid",
	"forcegid",
	"file_mode",
	"dir_mode",
	"dev",
	"exec",
	/* durability: fsync always reaches the server's disk; the bridge's
	 * mount-time deadline is the agent's probe timeout */
	"nostrictsync",
	"strictsync",
	"mount_timeout",
};

/* Pairs that contradict each other. */
static const char *const opt_conflicts[][2] = {
	{ "ro", "rw" },
	{ "hard", "soft" },
	{ "serverino", "noserverino" },
	{ "handlecache", "nohandlecache" },
	{ "noatime", "relatime" },
};

#define OPT_KEY_MAX 32

static bool
parse_decimal(const char *v, unsigned long min, unsigned long max, unsigned long *ret)
{
	unsigned long n = 0;
	size_t len = strlen(v);

	/* Decimal digits only: the kernel parses with base 0, so a leading
	 * zero would turn the number octal. */
	if (len == 0 || len > 9 || strspn(v, "0123456789") != len ||
		(len > 1 && v[0] == '0'))
		return false;
	for (size_t i = 0; i < len; i++)
		n = n * 10 + (unsigned long)(v[i] - '0');
	if (n < min || n > max)
		return false;
	*ret = n;
	return true;
}

static int
check_opt_value(const char *field, const struct opt_rule *rule, const char *key,
	const char *val, unsigned *port, struct nq_error *err)
{
	unsigned long n;
	size_t vlen;

	switch (rule->type) {
	case OPT_FLAG:
		if (val)
			return nq_error_set(err, INVALID, field,
				"%s: the mount option \"%s\" takes no value", field, key);
		return 0;
	case OPT_NUM:
		if (!val || !parse_decimal(val, rule->min, rule->max, &n))
			return nq_error_set(err, INVALID, field,
				"%s: the mount option \"%s\" needs a decimal number from %lu to %lu without leading zeros",
				field, key, rule->min, rule->max);
		if (strcmp(key, "port") == 0)
			*port = (unsigned)n;
		return 0;
	case OPT_CACHE:
		if (!val || (strcmp(val, "none") != 0 && strcmp(val, "strict") != 0 &&
				    strcmp(val, "loose") != 0))
			return nq_error_set(err, INVALID, field,
				"%s: the mount option \"cache\" must be none, strict or loose",
				field);
		return 0;
	case OPT_CHARSET:
		vlen = val ? strlen(val) : 0;
		if (vlen == 0 || vlen > 32 || !is_alnum(val[0]) ||
			strspn(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				    "0123456789_-") != vlen)
			return nq_error_set(err, INVALID, field,
				"%s: the mount option \"iocharset\" needs a character set name such as utf8",
				field);
		return 0;
	}
	return -EINVAL;
}

static int
check_opt_item(const char *field, const char *item, size_t len, struct mount_opts *o,
	struct nq_error *err)
{
	char buf[NQ_OPTS_MAX + 1];
	const struct opt_rule *rule = NULL;
	char *val;
	size_t klen;
	int r;

	if (len == 0)
		return nq_error_set(err, INVALID, field,
			"%s contains an empty mount option (check for stray commas)",
			field);
	memcpy(buf, item, len);
	buf[len] = '\0';
	val = strchr(buf, '=');
	if (val) {
		*val++ = '\0';
		if (strchr(val, '='))
			return nq_error_set(err, INVALID, field,
				"%s: a mount option value cannot contain '='", field);
	}
	klen = strlen(buf);
	if (klen == 0 || klen > OPT_KEY_MAX ||
		strspn(buf, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "0123456789_-") != klen)
		return nq_error_set(err, INVALID, field,
			"%s contains an unknown mount option", field);
	for (size_t i = 0; i < ARRAY_SIZE(managed_opts); i++)
		if (strcasecmp(buf, managed_opts[i]) == 0)
			return nq_error_set(err, INVALID, field,
				"%s: the mount option \"%s\" is managed by the backend and cannot be set here",
				field, managed_opts[i]);
	for (size_t i = 0; i < ARRAY_SIZE(opt_rules); i++)
		if (strcmp(buf, opt_rules[i].key) == 0)
			rule = &opt_rules[i];
	if (!rule)
		return nq_error_set(err, INVALID, field,
			"%s contains an unknown mount option \"%s\"", field, buf);
	r = check_opt_value(field, rule, rule->key, val, &o->port, err);
	if (r < 0)
		return r;

	for (unsigned i = 0; i < o->n; i++) {
		size_t ilen = strcspn(o->items[i], "=");

		if (ilen == klen && memcmp(o->items[i], buf, klen) == 0)
			return nq_error_set(err, INVALID, field,
				"%s sets the mount option \"%s\" more than once", field,
				rule->key);
		for (size_t c = 0; c < ARRAY_SIZE(opt_conflicts); c++) {
			const char *a = opt_conflicts[c][0], *b = opt_conflicts[c][1];

			if ((strcmp(buf, a) == 0 && strcmp(o->items[i], b) == 0) ||
				(strcmp(buf, b) == 0 && strcmp(o->items[i], a) == 0))
				return nq_error_set(err, INVALID, field,
					"%s sets both \"%s\" and \"%s\", which contradict each other",
					field, a, b);
		}
	}
	if (o->n >= NQ_MAX_EXTRA_OPTS)
		return nq_error_set(err, INVALID, field,
			"%s has more than %d mount options", field, NQ_MAX_EXTRA_OPTS);
	o->items[o->n] = strndup(item, len);
	if (!o->items[o->n])
		return nq_error_setr(err, -ENOMEM, "internal_error", field,
			"out of memory");
	o->n++;
	return 0;
}

void
mount_opts_release(struct mount_opts *o)
{
	if (!o)
		return;
	for (unsigned i = 0; i < o->n && i < NQ_MAX_EXTRA_OPTS; i++)
		free(o->items[i]);
	memset(o, 0, sizeof *o);
}

int
validate_mount_options(const char *field, const char *in, struct mount_opts *ret,
	struct nq_error *err)
{
	struct mount_opts o = { 0 };
	size_t len, start = 0;
	int r;

	if (!in || in[0] == '\0') {
		*ret = o;
		return 0;
	}
	len = strnlen(in, NQ_OPTS_MAX + 1);
	if (len > NQ_OPTS_MAX)
		return nq_error_set(err, INVALID, field, "%s is longer than %d characters",
			field, NQ_OPTS_MAX);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (is_ctl(c))
			return nq_error_set(err, INVALID, field,
				"%s cannot contain control characters or line breaks",
				field);
		if (c == ' ')
			return nq_error_set(err, INVALID, field,
				"%s cannot contain spaces; separate options with ','",
				field);
		if (c == '"' || c == '\'' || c == '\\' || c == '`')
			return nq_error_set(err, INVALID, field,
				"%s cannot contain quotes or backslashes", field);
		if (c >= 0x80)
			return nq_error_set(err, INVALID, field, "%s must be plain ASCII",
				field);
	}
	for (size_t i = 0; i <= len; i++) {
		if (i < len && in[i] != ',')
			continue;
		r = check_opt_item(field, in + start, i - start, &o, err);
		if (r < 0) {
			mount_opts_release(&o);
			return r;
		}
		start = i + 1;
	}
	*ret = o;
	return 0;
}

int
mount_opts_join(const struct mount_opts *o, char *buf, size_t bufsz)
{
	size_t used = 0;

	if (bufsz == 0)
		return -ENOSPC;
	buf[0] = '\0';
	for (unsigned i = 0; i < o->n; i++) {
		size_t n = strlen(o->items[i]);

		if (used + (i > 0) + n + 1 > bufsz)
			return -ENOSPC;
		if (i > 0)
			buf[used++] = ',';
		memcpy(buf + used, o->items[i], n + 1);
		used += n;
	}
	return 0;
}
