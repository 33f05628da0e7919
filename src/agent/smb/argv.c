/* The argv vectors of the two SMB mount drivers (mount.cifs and
 * nqrust-smbfs) and the identity of a mount. Pure string building from an
 * already validated spec; golden-tested byte for byte. */
#include "agent/smb/driver.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bound on one "-o" option string; far above any valid spec. */
#define SMB_OPTS_STR_MAX 8192

/* Extra options nqrust-smbfs understands; the rest tune the kernel client
 * only and are dropped for the FUSE driver. */
static const char *const fuse_extra_keys[] = {
	"port", "ro", "rw", "noperm", "cache", "actimeo",
};

void
smb_mount_spec_release(struct smb_mount_spec *s)
{
	if (!s)
		return;
	mount_opts_release(&s->opts);
}

int
smb_mount_spec_copy(const struct smb_mount_spec *src, struct smb_mount_spec *dst)
{
	struct smb_mount_spec tmp;

	if (!src || !dst || src->opts.n > NQ_MAX_EXTRA_OPTS)
		return -EINVAL;
	memcpy(&tmp, src, sizeof tmp);
	memset(&tmp.opts, 0, sizeof tmp.opts);
	tmp.opts.port = src->opts.port;
	for (unsigned i = 0; i < src->opts.n; i++) {
		tmp.opts.items[i] = strdup(src->opts.items[i]);
		if (!tmp.opts.items[i]) {
			mount_opts_release(&tmp.opts);
			return -ENOMEM;
		}
		tmp.opts.n = i + 1;
	}
	*dst = tmp;
	return 0;
}

int
smb_unc(const struct smb_mount_spec *s, char *buf, size_t bufsz)
{
	int n;

	if (!s || !buf || s->server[0] == '\0' || s->share[0] == '\0')
		return -EINVAL;
	n = snprintf(buf, bufsz, "//%s/%s", s->server, s->share);
	if (n < 0 || (size_t)n >= bufsz)
		return -ENOSPC;
	return 0;
}

/* A small bounded string builder. */
struct sbuf {
	char *p;
	size_t len, cap;
	bool overflow;
};

static void
sbuf_addf(struct sbuf *b, const char *fmt, ...) _printf_(2, 3);

static void
sbuf_addf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->cap - b->len) {
		b->overflow = true;
		return;
	}
	b->len += (size_t)n;
}

/* Append s with '%' and '|' escaped, so the key's '|' separators stay
 * unambiguous whatever a user name or domain contains. */
static void
sbuf_add_escaped(struct sbuf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '%' || *s == '|')
			sbuf_addf(b, "%%%02X", (unsigned char)*s);
		else
			sbuf_addf(b, "%c", *s);
	}
}

static const char *
spec_version(const struct smb_mount_spec *s)
{
	return s->version[0] == '\0' ? "default" : s->version;
}

int
smb_spec_key(const struct smb_mount_spec *s, char *buf, size_t bufsz)
{
	struct sbuf b = { .p = buf, .cap = bufsz };

	if (!s || !buf || bufsz == 0)
		return -EINVAL;
	buf[0] = '\0';
	sbuf_add_escaped(&b, s->server);
	sbuf_addf(&b, "|");
	sbuf_add_escaped(&b, s->share);
	sbuf_addf(&b, "|");
	sbuf_add_escaped(&b, s->username);
	sbuf_addf(&b, "|");
	sbuf_add_escaped(&b, s->domain);
	sbuf_addf(&b, "|");
	sbuf_add_escaped(&b, spec_version(s));
	sbuf_addf(&b, "|");
	for (unsigned i = 0; i < s->opts.n && i < NQ_MAX_EXTRA_OPTS; i++) {
		if (i > 0)
			sbuf_addf(&b, ",");
		sbuf_add_escaped(&b, s->opts.items[i]);
	}
	return b.overflow ? -ENOSPC : 0;
}

/* Extra options that choose outage behaviour; emitted once, by
 * add_recovery, for either driver. */
static bool
is_recovery_opt(const char *item)
{
	return strcmp(item, "hard") == 0 || strcmp(item, "soft") == 0 ||
	       strncmp(item, "timeout=", 8) == 0;
}

/* hard, or soft with its grace: see smb_kernel_argv and smb_fuse_argv. */
static void
add_recovery(struct sbuf *b, const struct smb_mount_spec *s, bool fuse,
	unsigned timeout_s)
{
	const char *mode = fuse ? "soft" : "hard";
	unsigned long grace = SMB_DEFAULT_GRACE_S;

	for (unsigned i = 0; i < s->opts.n; i++) {
		const char *it = s->opts.items[i];

		if (strcmp(it, "hard") == 0 || strcmp(it, "soft") == 0)
			mode = it;
		else if (strncmp(it, "timeout=", 8) == 0)
			grace = strtoul(it + 8, NULL, 10);
	}
	sbuf_addf(b, ",%s", mode);
	if (fuse && strcmp(mode, "soft") == 0)
		sbuf_addf(b, ",timeout=%lu", grace);
	if (fuse)
		sbuf_addf(b, ",mount_timeout=%u", timeout_s);
}

static bool
fuse_understands(const char *item)
{
	size_t klen = strcspn(item, "=");

	for (size_t i = 0; i < ARRAY_SIZE(fuse_extra_keys); i++)
		if (strlen(fuse_extra_keys[i]) == klen &&
		    memcmp(fuse_extra_keys[i], item, klen) == 0)
			return true;
	return false;
}

/* The paths go into argv and into a comma-separated option: both must be
 * absolute and cred_path must not be able to split the option string. */
static bool
safe_abs_path(const char *p)
{
	if (!p || p[0] != '/')
		return false;
	for (; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == ',' || *p == 0x7f)
			return false;
	return true;
}

static int
build_argv(const struct smb_mount_spec *s, const char *program,
	const char *cred_path, const char *mount_point, bool fuse,
	unsigned timeout_s, char ***ret)
{
	_cleanup_free_ char *opts = NULL;
	char unc[NQ_SERVER_MAX + NQ_SHARE_MAX + 4];
	const char *vers = spec_version(s);
	struct sbuf b;
	char **argv;
	int r;

	if (!s || !ret || !program || program[0] != '/' ||
	    !safe_abs_path(mount_point) || s->opts.n > NQ_MAX_EXTRA_OPTS)
		return -EINVAL;
	if (s->username[0] != '\0' && !safe_abs_path(cred_path))
		return -EINVAL;
	if (strpbrk(s->domain, ",=") || strpbrk(s->version, ",="))
		return -EINVAL;
	if ((r = smb_unc(s, unc, sizeof unc)) < 0)
		return r;

	opts = malloc(SMB_OPTS_STR_MAX);
	if (!opts)
		return -ENOMEM;
	b = (struct sbuf){ .p = opts, .cap = SMB_OPTS_STR_MAX };
	opts[0] = '\0';
	/* A blank user name means guest: no credentials file at all. */
	if (s->username[0] != '\0')
		sbuf_addf(&b, "credentials=%s", cred_path);
	else
		sbuf_addf(&b, "guest");
	if (s->domain[0] != '\0')
		sbuf_addf(&b, ",domain=%s", s->domain);
	if (strcmp(vers, "default") != 0)
		sbuf_addf(&b, ",vers=%s", vers);
	sbuf_addf(&b, ",%s", SMB_DEFAULT_OPTS);
	add_recovery(&b, s, fuse, timeout_s);
	if (!fuse && server_is_ipv6(s->server)) {
		/* mount.cifs does not parse a bracketed literal: give the
		 * address itself. */
		size_t n = strlen(s->server);

		sbuf_addf(&b, ",ip=%.*s", (int)(n - 2), s->server + 1);
	}
	for (unsigned i = 0; i < s->opts.n; i++) {
		if (is_recovery_opt(s->opts.items[i]) ||
		    (fuse && !fuse_understands(s->opts.items[i])))
			continue;
		sbuf_addf(&b, ",%s", s->opts.items[i]);
	}
	if (b.overflow)
		return -ENOSPC;

	argv = calloc(6, sizeof *argv);
	if (!argv)
		return -ENOMEM;
	argv[0] = strdup(program);
	argv[1] = strdup(unc);
	argv[2] = strdup(mount_point);
	argv[3] = strdup("-o");
	argv[4] = TAKE_PTR(opts);
	for (int i = 0; i < 4; i++)
		if (!argv[i]) {
			for (int j = 0; j < 5; j++)
				free(argv[j]);
			free(argv);
			return -ENOMEM;
		}
	*ret = argv;
	return 0;
}

int
smb_kernel_argv(const struct smb_mount_spec *s, const char *program,
	const char *cred_path, const char *mount_point, char ***ret)
{
	return build_argv(s, program, cred_path, mount_point, false, 0, ret);
}

int
smb_fuse_argv(const struct smb_mount_spec *s, const char *program,
	const char *cred_path, const char *mount_point, unsigned timeout_s,
	char ***ret)
{
	return build_argv(s, program, cred_path, mount_point, true, timeout_s,
		ret);
}

void
smb_argv_free(char **argv)
{
	if (!argv)
		return;
	for (char **p = argv; *p; p++)
		free(*p);
	free(argv);
}
