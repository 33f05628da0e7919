#include "agent/mounts/mountinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"

/* Copy one space-separated field, decoding the kernel's octal escapes. */
static char *
field_dup(const char *s, size_t len)
{
	char *out = malloc(len + 1), *o = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\\' && i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' &&
			s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' &&
			s[i + 3] <= '7') {
			*o++ = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
				      (s[i + 3] - '0'));
			i += 3;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

/* Split a line into fields; returns the count (at most max). */
static size_t
split(const char *line, size_t linelen, const char **f, size_t *flen, size_t max)
{
	size_t n = 0, i = 0;

	while (i < linelen && n < max) {
		while (i < linelen && line[i] == ' ')
			i++;
		if (i >= linelen)
			break;
		f[n] = line + i;
		while (i < linelen && line[i] != ' ')
			i++;
		flen[n] = (size_t)(line + i - f[n]);
		n++;
	}
	return n;
}

int
mountinfo_parse(const char *text, struct mountinfo_entry **ret, size_t *ret_n)
{
	struct mountinfo_entry *v = NULL;
	size_t n = 0, cap = 0;
	const char *p = text;

	while (*p) {
		const char *eol = strchrnul(p, '\n');
		const char *f[64];
		size_t fl[64], nf = split(p, (size_t)(eol - p), f, fl, 64), sep;

		/* id parent maj:min root mountpoint opts [optional...] - type source super */
		for (sep = 6; sep < nf; sep++)
			if (fl[sep] == 1 && f[sep][0] == '-')
				break;
		if (nf >= 7 && sep + 2 < nf) {
			if (n == cap) {
				cap = cap ? cap * 2 : 32;
				struct mountinfo_entry *nv = realloc(v, cap * sizeof *v);
				if (!nv)
					goto nomem;
				v = nv;
			}
			v[n].mount_point = field_dup(f[4], fl[4]);
			v[n].fstype = field_dup(f[sep + 1], fl[sep + 1]);
			v[n].source = field_dup(f[sep + 2], fl[sep + 2]);
			n++;
			if (!v[n - 1].mount_point || !v[n - 1].fstype || !v[n - 1].source)
				goto nomem;
		}
		p = *eol ? eol + 1 : eol;
	}
	*ret = v;
	*ret_n = n;
	return 0;
nomem:
	mountinfo_free(v, n);
	return -ENOMEM;
}

int
mountinfo_read(struct mountinfo_entry **ret, size_t *ret_n)
{
	_cleanup_close_ int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0;

	if (fd < 0)
		return negerrno();
	for (;;) {
		if (len + 4096 + 1 > cap) {
			if (cap >= (16u << 20))
				return -EFBIG;
			cap = cap ? cap * 2 : 65536;
			char *nb = realloc(buf, cap);
			if (!nb)
				return -ENOMEM;
			buf = nb;
		}
		ssize_t r = read(fd, buf + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return negerrno();
		if (r == 0)
			break;
		len += (size_t)r;
	}
	buf[len] = '\0';
	return mountinfo_parse(buf, ret, ret_n);
}

void
mountinfo_free(struct mountinfo_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].mount_point);
		free(e[i].fstype);
		free(e[i].source);
	}
	free(e);
}

const struct mountinfo_entry *
mountinfo_find(const struct mountinfo_entry *e, size_t n, const char *mount_point)
{
	for (size_t i = n; i-- > 0;)
		if (strcmp(e[i].mount_point, mount_point) == 0)
			return &e[i];
	return NULL;
}

bool
mountinfo_is_smb(const struct mountinfo_entry *e)
{
	return !strcmp(e->fstype, "cifs") || !strcmp(e->fstype, "smb3") ||
	       !strcmp(e->fstype, "fuse.nqrust-smbfs");
}

int
mountinfo_has_smb(const char *mount_point, const char *source)
{
	struct mountinfo_entry *mi = NULL;
	size_t n = 0;
	int r = mountinfo_read(&mi, &n);

	if (r < 0)
		return r;
	const struct mountinfo_entry *m = mountinfo_find(mi, n, mount_point);
	r = m && mountinfo_is_smb(m) && (!source || !strcmp(m->source, source));
	mountinfo_free(mi, n);
	return r;
}
