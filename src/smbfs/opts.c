/* nqrust-smbfs command-line parsing; see opts.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/opts.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int __attribute__((format(printf, 2, 3)))
fail(struct smbfs_opts *o, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(o->error, sizeof(o->error), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* Strict unsigned parse in base (0 = C rules): whole string, in range. */
static int
parse_uint(const char *s, int base, unsigned long max, unsigned long *ret)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, base);
	if (errno || *end || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

static bool
valid_hostname(const char *h)
{
	size_t n = strlen(h);

	if (n == 0 || n > SMBFS_SERVER_MAX || h[0] == '-' || h[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
			return false;
	}
	return true;
}

static bool
valid_ipv6_literal(const char *s)
{
	char buf[INET6_ADDRSTRLEN + 1];
	struct in6_addr a;
	size_t n = strlen(s);

	if (n < 4 || s[0] != '[' || s[n - 1] != ']' || n - 2 >= sizeof(buf))
		return false;
	memcpy(buf, s + 1, n - 2);
	buf[n - 2] = '\0';
	return inet_pton(AF_INET6, buf, &a) == 1;
}

static bool
valid_share(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > SMBFS_SHARE_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || strchr("/\\,:*?\"<>|%", c))
			return false;
	}
	return true;
}

/* "//server/share" (one trailing '/' tolerated) into o->server, o->share. */
static int
parse_source(struct smbfs_opts *o, const char *src)
{
	const char *p, *slash;
	size_t n;

	if (strncmp(src, "//", 2) != 0)
		return fail(o, "source must look like //server/share");
	p = src + 2;
	if (*p == '[') {
		const char *close = strchr(p, ']');

		if (!close || close[1] != '/')
			return fail(o, "malformed IPv6 server in source");
		slash = close + 1;
	} else {
		slash = strchr(p, '/');
		if (!slash)
			return fail(o, "source must look like //server/share");
	}
	o->server = strndup(p, (size_t)(slash - p));
	o->share = strdup(slash + 1);
	if (!o->server || !o->share)
		return -ENOMEM;
	n = strlen(o->share);
	if (n > 0 && o->share[n - 1] == '/')
		o->share[n - 1] = '\0';
	if (o->server[0] == '[' ? !valid_ipv6_literal(o->server)
				: !valid_hostname(o->server))
		return fail(o, "invalid server name in source");
	if (!valid_share(o->share))
		return fail(o, "invalid share name in source");
	if (asprintf(&o->unc, "//%s/%s", o->server, o->share) < 0) {
		o->unc = NULL;
		return -ENOMEM;
	}
	return 0;
}

static int
parse_vers(struct smbfs_opts *o, const char *v)
{
	static const struct {
		const char *name, *min, *max;
	} tbl[] = {
		{ "default", "SMB2_02", "SMB3_11" },
		{ "2.0", "SMB2_02", "SMB2_02" },
		{ "2.1", "SMB2_10", "SMB2_10" },
		{ "3", "SMB3_00", "SMB3_00" },
		{ "3.0", "SMB3_00", "SMB3_00" },
		{ "3.11", "SMB3_11", "SMB3_11" },
	};

	for (size_t i = 0; i < sizeof(tbl) / sizeof(tbl[0]); i++) {
		if (strcmp(v, tbl[i].name) == 0) {
			o->vers = tbl[i].name;
			o->proto_min = tbl[i].min;
			o->proto_max = tbl[i].max;
			return 0;
		}
	}
	return fail(o, "unsupported vers= (allowed: default, 2.0, 2.1, 3, 3.0, 3.11)");
}

/* Options without a value and the bool each sets. NO_FIELD: accepted for
 * mount.cifs compatibility, nothing to do here. Of hard/soft and
 * strictsync/nostrictsync the last one given wins, as in cifs. */
#define NO_FIELD SIZE_MAX
static const struct flag_opt {
	const char *name;
	size_t field; /* offset of a bool in struct smbfs_opts */
	bool value;
} flag_opts[] = {
	{ "nobrl", NO_FIELD, false },
	{ "noperm", NO_FIELD, false },
	{ "rw", NO_FIELD, false },
	{ "strictsync", offsetof(struct smbfs_opts, nostrictsync), false },
	{ "nostrictsync", offsetof(struct smbfs_opts, nostrictsync), true },
	{ "hard", offsetof(struct smbfs_opts, hard), true },
	{ "soft", offsetof(struct smbfs_opts, hard), false },
	{ "guest", offsetof(struct smbfs_opts, guest), true },
	{ "ro", offsetof(struct smbfs_opts, view.ro), true },
	{ "nodev", offsetof(struct smbfs_opts, nodev), true },
	{ "nosuid", offsetof(struct smbfs_opts, nosuid), true },
	{ "noexec", offsetof(struct smbfs_opts, noexec), true },
};

/* Numeric options: base, range and the message naming the option (never
 * its value), and the type of the field the number goes to. */
enum num_type { NUM_UNSIGNED, NUM_UID, NUM_GID, NUM_MODE, NUM_DOUBLE };
static const struct num_opt {
	const char *name;
	size_t field; /* offset in struct smbfs_opts */
	enum num_type type;
	int base;
	unsigned long min, max;
	const char *error;
} num_opts[] = {
	{ "port", offsetof(struct smbfs_opts, port), NUM_UNSIGNED, 10, 1, 65535,
		"port= must be 1..65535" },
	{ "uid", offsetof(struct smbfs_opts, view.uid), NUM_UID, 10, 0, 0xfffffffeUL,
		"uid= must be a number" },
	{ "gid", offsetof(struct smbfs_opts, view.gid), NUM_GID, 10, 0, 0xfffffffeUL,
		"gid= must be a number" },
	{ "file_mode", offsetof(struct smbfs_opts, view.file_mode), NUM_MODE, 8, 0, 07777,
		"file_mode= must be an octal mode" },
	{ "dir_mode", offsetof(struct smbfs_opts, view.dir_mode), NUM_MODE, 8, 0, 07777,
		"dir_mode= must be an octal mode" },
	{ "timeout", offsetof(struct smbfs_opts, grace_s), NUM_UNSIGNED, 10, 1, 3600,
		"timeout= must be 1..3600 seconds" },
	{ "conns", offsetof(struct smbfs_opts, conns), NUM_UNSIGNED, 10, 1, 16,
		"conns= must be 1..16" },
	{ "replay_mib", offsetof(struct smbfs_opts, replay_mib), NUM_UNSIGNED, 10, 0, 4096,
		"replay_mib= must be 0..4096" },
	{ "mount_timeout", offsetof(struct smbfs_opts, mount_timeout_s), NUM_UNSIGNED, 10,
		1, 3600, "mount_timeout= must be 1..3600 seconds" },
	{ "io_deadline", offsetof(struct smbfs_opts, io_deadline_s), NUM_UNSIGNED, 10, 0,
		3600, "io_deadline= must be 0..3600 seconds (0 = off)" },
	{ "actimeo", offsetof(struct smbfs_opts, actimeo), NUM_DOUBLE, 10, 0, 86400,
		"actimeo= must be 0..86400 seconds" },
};

static bool
set_flag(struct smbfs_opts *o, const char *opt)
{
	for (size_t i = 0; i < sizeof(flag_opts) / sizeof(flag_opts[0]); i++) {
		const struct flag_opt *f = &flag_opts[i];

		if (strcmp(opt, f->name) != 0)
			continue;
		if (f->field != NO_FIELD)
			*(bool *)((char *)o + f->field) = f->value;
		return true;
	}
	return false;
}

/* 1 when opt is a numeric option (then set), 0 when it is not one, or
 * -EINVAL for a value out of its range. */
static int
set_number(struct smbfs_opts *o, const char *opt, const char *val)
{
	const struct num_opt *t = NULL;
	unsigned long n;
	void *field;

	for (size_t i = 0; i < sizeof(num_opts) / sizeof(num_opts[0]) && !t; i++)
		if (strcmp(opt, num_opts[i].name) == 0)
			t = &num_opts[i];
	if (!t)
		return 0;
	if (parse_uint(val, t->base, t->max, &n) < 0 || n < t->min)
		return fail(o, "%s", t->error);
	field = (char *)o + t->field;
	switch (t->type) {
	case NUM_UNSIGNED:
		*(unsigned *)field = (unsigned)n;
		break;
	case NUM_UID:
		*(uid_t *)field = (uid_t)n;
		break;
	case NUM_GID:
		*(gid_t *)field = (gid_t)n;
		break;
	case NUM_MODE:
		*(mode_t *)field = (mode_t)n;
		break;
	case NUM_DOUBLE:
		*(double *)field = (double)n;
		break;
	}
	return 1;
}

static int
set_domain(struct smbfs_opts *o, const char *val)
{
	if (strlen(val) > SMBFS_CRED_MAX || strchr(val, '/'))
		return fail(o, "invalid domain=");
	free(o->domain);
	o->domain = strdup(val);
	if (!o->domain)
		return -ENOMEM;
	o->domain_from_opt = true;
	return 0;
}

static int
set_cache(struct smbfs_opts *o, const char *val)
{
	if (strcmp(val, "strict") == 0)
		o->view.cache = SMBFS_CACHE_STRICT;
	else if (strcmp(val, "none") == 0)
		o->view.cache = SMBFS_CACHE_NONE;
	else if (strcmp(val, "loose") == 0)
		o->view.cache = SMBFS_CACHE_LOOSE;
	else
		return fail(o, "cache= must be none, strict or loose");
	return 0;
}

/* One name=value option that is not numeric. */
static int
set_string(struct smbfs_opts *o, const char *opt, const char *val)
{
	if (strcmp(opt, "credentials") == 0 || strcmp(opt, "cred") == 0) {
		if (!*val || o->cred_path)
			return fail(o, "credentials= needs one file name");
		o->cred_path = strdup(val);
		return o->cred_path ? 0 : -ENOMEM;
	}
	if (strcmp(opt, "vers") == 0)
		return parse_vers(o, val);
	if (strcmp(opt, "domain") == 0 || strcmp(opt, "dom") == 0 ||
		strcmp(opt, "workgroup") == 0)
		return set_domain(o, val);
	if (strcmp(opt, "cache") == 0)
		return set_cache(o, val);
	if (strcmp(opt, "fsname") == 0)
		return 0; /* ignored: the source is always the fsname */
	/* Never echo the value: it could be a password=. */
	return fail(o, "unknown option '%.40s'", opt);
}

static int
parse_one(struct smbfs_opts *o, char *opt)
{
	char *val = strchr(opt, '=');
	int r;

	if (val)
		*val++ = '\0';
	if (!*opt)
		return 0; /* empty item, e.g. "a,,b" */
	if (!val) {
		if (set_flag(o, opt))
			return 0;
		return fail(o, "unknown or malformed option '%.40s'", opt);
	}
	r = set_number(o, opt, val);
	if (r != 0)
		return r < 0 ? r : 0;
	return set_string(o, opt, val);
}

static int
parse_option_string(struct smbfs_opts *o, const char *s)
{
	char *copy = strdup(s), *p, *item;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	p = copy;
	while ((item = strsep(&p, ",")) != NULL) {
		r = parse_one(o, item);
		if (r < 0)
			break;
	}
	/* The string may have held a secret someone passed by mistake. */
	explicit_bzero(copy, strlen(s));
	free(copy);
	return r;
}

/* One request waits at most the mount deadline (when given) or 30 s, and
 * on a soft mount never longer than the grace: with a hung server the
 * first timed-out request already used it up, so EIO comes after about
 * timeout= seconds, not later. */
static unsigned
wire_timeout(const struct smbfs_opts *o)
{
	unsigned t = o->mount_timeout_s ? o->mount_timeout_s : SMBFS_WIRE_TIMEOUT_S;

	if (!o->hard && o->grace_s < t)
		t = o->grace_s;
	return t;
}

static void
opts_init(struct smbfs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->port = 445;
	o->grace_s = SMBFS_DEFAULT_GRACE_S;
	o->replay_mib = SMBFS_DEFAULT_REPLAY_MIB;
	o->conns = SMBFS_DEFAULT_CONNS;
	o->vers = "default";
	o->proto_min = "SMB2_02";
	o->proto_max = "SMB3_11";
	o->view.file_mode = 0755;
	o->view.dir_mode = 0755;
	o->view.cache = SMBFS_CACHE_STRICT;
	o->actimeo = 1;
}

int
smbfs_opts_parse(int argc, char **argv, struct smbfs_opts *o)
{
	const char *pos[2] = { NULL, NULL };
	int npos = 0, r;

	opts_init(o);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-f") == 0) {
			o->foreground = true;
		} else if (strcmp(a, "--check") == 0) {
			o->check_only = true;
		} else if (strcmp(a, "-o") == 0) {
			if (i + 1 >= argc)
				return fail(o, "-o needs an argument");
			r = parse_option_string(o, argv[++i]);
			if (r < 0)
				return r;
		} else if (strncmp(a, "-o", 2) == 0) {
			r = parse_option_string(o, a + 2);
			if (r < 0)
				return r;
		} else if (a[0] == '-') {
			return fail(o, "unknown argument '%.40s'", a);
		} else if (npos < 2) {
			pos[npos++] = a;
		} else {
			return fail(o, "too many arguments");
		}
	}
	if (npos != 2)
		return fail(o, "usage: nqrust-smbfs //SERVER/SHARE MOUNTPOINT "
			       "-o OPTIONS [-f]");
	r = parse_source(o, pos[0]);
	if (r < 0)
		return r;
	if (o->guest == !!o->cred_path)
		return fail(o, "exactly one of credentials= or guest is required");
	o->timeout_s = wire_timeout(o);
	o->mountpoint = realpath(pos[1], NULL);
	if (!o->mountpoint)
		o->mountpoint = strdup(pos[1]);
	if (!o->mountpoint)
		return -ENOMEM;
	return 0;
}

int
smbfs_opts_check_creds(struct smbfs_opts *o)
{
	const struct smb_creds *c = &o->creds;

	if (!c->username || !*c->username)
		return fail(o, "credentials file has no username=");
	if (strlen(c->username) > SMBFS_CRED_MAX)
		return fail(o, "username in credentials file is too long");
	if (c->password && (c->password_len > SMBFS_CRED_MAX ||
				   memchr(c->password, '\0', c->password_len)))
		return fail(o, "password in credentials file is too long or has NUL");
	if (!c->password)
		return fail(o, "credentials file has no password=");
	if (c->domain && strlen(c->domain) > SMBFS_CRED_MAX)
		return fail(o, "domain in credentials file is too long");
	if (c->domain && *c->domain && !o->domain_from_opt) {
		o->domain = strdup(c->domain);
		if (!o->domain)
			return -ENOMEM;
	}
	return 0;
}

void
smbfs_opts_release(struct smbfs_opts *o)
{
	if (!o)
		return;
	smb_creds_release(&o->creds);
	free(o->unc);
	free(o->server);
	free(o->share);
	free(o->mountpoint);
	free(o->cred_path);
	free(o->domain);
	memset(o, 0, sizeof(*o));
}
