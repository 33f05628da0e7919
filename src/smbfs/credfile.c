/* Credentials file parser; see credfile.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/credfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void
smb_creds_release(struct smb_creds *c)
{
	if (!c)
		return;
	if (c->password) {
		explicit_bzero(c->password, c->password_len);
		free(c->password);
	}
	free(c->username);
	free(c->domain);
	memset(c, 0, sizeof(*c));
}

/* Does the key (klen bytes) name field `full`, also in its mount.cifs
 * abbreviation `abbr`? Case-insensitive like mount.cifs. */
static int
key_is(const char *key, size_t klen, const char *full, const char *abbr)
{
	return (klen == strlen(full) && strncasecmp(key, full, klen) == 0) ||
	       (klen == strlen(abbr) && strncasecmp(key, abbr, klen) == 0);
}

/* Replace *slot with a copy of v (vlen bytes), wiping the old value. */
static int
set_field(char **slot, size_t *slot_len, const char *v, size_t vlen)
{
	char *copy = malloc(vlen + 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, v, vlen);
	copy[vlen] = '\0';
	if (*slot) {
		explicit_bzero(*slot, slot_len ? *slot_len : strlen(*slot));
		free(*slot);
	}
	*slot = copy;
	if (slot_len)
		*slot_len = vlen;
	return 0;
}

int
credfile_parse(const char *buf, size_t len, struct smb_creds *ret)
{
	struct smb_creds c = { 0 };
	const char *p = buf, *end = buf + len;
	int r = 0;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;
		const char *key = p, *eq;
		size_t klen, vlen;

		p = eol ? eol + 1 : end;
		while (key < line_end && (*key == ' ' || *key == '\t'))
			key++;
		eq = memchr(key, '=', (size_t)(line_end - key));
		if (!eq)
			continue;
		klen = (size_t)(eq - key);
		vlen = (size_t)(line_end - (eq + 1));
		if (key_is(key, klen, "username", "user"))
			r = set_field(&c.username, NULL, eq + 1, vlen);
		else if (key_is(key, klen, "password", "pass"))
			r = set_field(&c.password, &c.password_len, eq + 1, vlen);
		else if (key_is(key, klen, "domain", "dom"))
			r = set_field(&c.domain, NULL, eq + 1, vlen);
		if (r < 0) {
			smb_creds_release(&c);
			return r;
		}
	}
	*ret = c;
	return 0;
}

int
credfile_read(const char *path, struct smb_creds *ret)
{
	char *buf;
	size_t len = 0;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	buf = malloc(CREDFILE_MAX_BYTES + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, CREDFILE_MAX_BYTES + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > CREDFILE_MAX_BYTES) {
			r = -EFBIG;
			goto out;
		}
	}
	r = credfile_parse(buf, len, ret);
out:
	explicit_bzero(buf, len);
	free(buf);
	close(fd);
	return r;
}
