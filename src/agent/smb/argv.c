/* The argv vectors of the two SMB mount drivers (mount.cifs and
 * nqrust-smbfs) and the identity of a mount. Pure string building from an
 * already validated spec; golden-tested byte for byte. */
#include "agent/smb/driver.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"
#include "common/nq_argv.h"
#include "common/nq_buf.h"

/* Bound on one "-o" option string; far above any valid spec. */
#define SMB_OPTS_STR_MAX 8192

/* Extra options nqrust-smbfs understands; the rest tune the kernel client
 * only and are dropped for the FUSE driver. */
static const char *const fuse_extra_keys[] = {
	"port",
	"ro",
	"rw",
	"noperm",
	"cache",
	"actimeo",
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

/* Append s with '%' and '|' escaped, so the key's '|' separators stay
 * unambiguous whatever a user name or domain contains. */
static void
add_escaped(struct nq_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '%' || *s == '|')
			nq_buf_addf(b, "%%%02X", (unsigned char)*s);
		else
			nq_buf_add(b, s, 1);
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
	const char *fields[5];
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(bufsz ? bufsz - 1 : 0,
		false);

	if (!s || !buf || bufsz == 0)
		return -EINVAL;
	buf[0] = '\0';
	fields[0] = s->server;
	fields[1] = s->share;
	fields[2] = s->username;
	fields[3] = s->domain;
	fields[4] = spec_version(s);
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		add_escaped(&b, fields[i]);
		nq_buf_add(&b, "|", 1);
	}
	for (unsigned i = 0; i < s->opts.n && i < NQ_MAX_EXTRA_OPTS; i++) {
		if (i > 0)
			nq_buf_add(&b, ",", 1);
		add_escaped(&b, s->opts.items[i]);
	}
	if (b.overflow)
		return -ENOSPC;
	if (!b.p && b.len)
		return -ENOMEM;
	memcpy(buf, nq_buf_str(&b), b.len + 1);
	return 0;
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
add_recovery(struct nq_buf *b, const struct smb_mount_spec *s, bool fuse,
	unsigned timeout_s, unsigned io_deadline_s)
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
	nq_buf_addf(b, ",%s", mode);
	if (fuse && strcmp(mode, "soft") == 0)
		nq_buf_addf(b, ",timeout=%lu", grace);
	if (fuse)
		nq_buf_addf(b, ",mount_timeout=%u", timeout_s);
	if (fuse && io_deadline_s)
		nq_buf_addf(b, ",io_deadline=%u", io_deadline_s);
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

/* The "-o" option string: see smb_kernel_argv and smb_fuse_argv. */
static int
build_opts(const struct smb_mount_spec *s, const char *cred_path, bool fuse,
	unsigned timeout_s, unsigned io_deadline_s, struct nq_buf *b)
{
	const char *vers = spec_version(s);

	/* A blank user name means guest: no credentials file at all. */
	if (s->username[0] != '\0')
		nq_buf_addf(b, "credentials=%s", cred_path);
	else
		nq_buf_addf(b, "guest");
	if (s->domain[0] != '\0')
		nq_buf_addf(b, ",domain=%s", s->domain);
	if (strcmp(vers, "default") != 0)
		nq_buf_addf(b, ",vers=%s", vers);
	nq_buf_addf(b, ",%s", SMB_DEFAULT_OPTS);
	add_recovery(b, s, fuse, timeout_s, io_deadline_s);
	if (!fuse && server_is_ipv6(s->server)) {
		/* mount.cifs does not parse a bracketed literal: give the
		 * address itself. */
		size_t n = strlen(s->server);

		nq_buf_addf(b, ",ip=%.*s", (int)(n - 2), s->server + 1);
	}
	for (unsigned i = 0; i < s->opts.n; i++) {
		if (is_recovery_opt(s->opts.items[i]) ||
			(fuse && !fuse_understands(s->opts.items[i])))
			continue;
		nq_buf_addf(b, ",%s", s->opts.items[i]);
	}
	if (b->overflow)
		return -ENOSPC;
	return b->p ? 0 : -ENOMEM;
}

static int
build_argv(const struct smb_mount_spec *s, const char *program, const char *cred_path,
	const char *mount_point, bool fuse, unsigned timeout_s, unsigned io_deadline_s,
	char ***ret)
{
	_cleanup_(nq_buf_release) struct nq_buf opts = NQ_BUF_INIT(SMB_OPTS_STR_MAX - 1,
		false);
	_cleanup_(nq_argv_release) struct nq_argv argv = { 0 };
	char unc[NQ_SERVER_MAX + NQ_SHARE_MAX + 4];
	int r;

	if (!s || !ret || !program || program[0] != '/' || !safe_abs_path(mount_point) ||
		s->opts.n > NQ_MAX_EXTRA_OPTS)
		return -EINVAL;
	if (s->username[0] != '\0' && !safe_abs_path(cred_path))
		return -EINVAL;
	if (strpbrk(s->domain, ",=") || strpbrk(s->version, ",="))
		return -EINVAL;
	if ((r = smb_unc(s, unc, sizeof unc)) < 0)
		return r;
	if ((r = build_opts(s, cred_path, fuse, timeout_s, io_deadline_s, &opts)) < 0)
		return r;
	if ((r = nq_argv_push(&argv, program)) < 0 || (r = nq_argv_push(&argv, unc)) < 0 ||
		(r = nq_argv_push(&argv, mount_point)) < 0 ||
		(r = nq_argv_push(&argv, "-o")) < 0 ||
		(r = nq_argv_push(&argv, nq_buf_str(&opts))) < 0)
		return r;
	*ret = nq_argv_steal(&argv);
	return 0;
}

int
smb_kernel_argv(const struct smb_mount_spec *s, const char *program, const char *cred_path,
	const char *mount_point, char ***ret)
{
	return build_argv(s, program, cred_path, mount_point, false, 0, 0, ret);
}

int
smb_fuse_argv(const struct smb_mount_spec *s, const char *program, const char *cred_path,
	const char *mount_point, unsigned timeout_s, unsigned io_deadline_s, char ***ret)
{
	return build_argv(s, program, cred_path, mount_point, true, timeout_s,
		io_deadline_s, ret);
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
