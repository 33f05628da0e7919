#include "agent/smb/credstore.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fsutil.h"

static int
file_name_ext(const char *backend_id, const char *ext, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s%s", backend_id, ext);
	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

static int
file_name(const char *backend_id, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s.cred", backend_id);
	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

int
credstore_path(const struct agent *a, const char *backend_id, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s/%s.cred", a->cfg.cred_dir, backend_id);
	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

static int
append(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len + n >= cap)
		return -ENOSPC;
	memcpy(buf + *len, s, n);
	*len += n;
	return 0;
}

static int put_as(struct agent *a, const char *backend_id, const char *ext,
	const char *username, const char *password, size_t password_len,
	const char *domain);

int
credstore_put(struct agent *a, const char *backend_id, const char *username,
	const char *password, size_t password_len, const char *domain)
{
	return put_as(a, backend_id, ".cred", username, password, password_len, domain);
}

int
credstore_put_pending(struct agent *a, const char *backend_id, const char *username,
	const char *password, size_t password_len, const char *domain)
{
	return put_as(a, backend_id, ".cred.new", username, password, password_len, domain);
}

int
credstore_pending_path(const struct agent *a, const char *backend_id, char *buf,
	size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s/%s.cred.new", a->cfg.cred_dir, backend_id);
	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

int
credstore_pending_commit(struct agent *a, const char *backend_id)
{
	char from[64], to[64];

	if (file_name_ext(backend_id, ".cred.new", from, sizeof from) < 0 ||
	    file_name(backend_id, to, sizeof to) < 0)
		return -ENAMETOOLONG;
	if (renameat(a->cred_dirfd, from, a->cred_dirfd, to) < 0)
		return negerrno();
	fsync(a->cred_dirfd);
	return 0;
}

void
credstore_pending_drop(struct agent *a, const char *backend_id)
{
	char name[64];

	if (file_name_ext(backend_id, ".cred.new", name, sizeof name) == 0)
		unlinkat(a->cred_dirfd, name, 0);
}

static int
put_as(struct agent *a, const char *backend_id, const char *ext, const char *username,
	const char *password, size_t password_len, const char *domain)
{
	char name[64];
	size_t cap = 64 + strlen(username) + password_len +
		     (domain ? strlen(domain) : 0);
	size_t len = 0;
	char *buf;
	int r;

	r = file_name_ext(backend_id, ext, name, sizeof name);
	if (r < 0)
		return r;
	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	if ((r = append(buf, cap, &len, "username=", 9)) < 0 ||
	    (r = append(buf, cap, &len, username, strlen(username))) < 0 ||
	    (r = append(buf, cap, &len, "\npassword=", 10)) < 0 ||
	    (r = append(buf, cap, &len, password, password_len)) < 0 ||
	    (r = append(buf, cap, &len, "\n", 1)) < 0)
		goto out;
	if (domain && *domain &&
	    ((r = append(buf, cap, &len, "domain=", 7)) < 0 ||
	     (r = append(buf, cap, &len, domain, strlen(domain))) < 0 ||
	     (r = append(buf, cap, &len, "\n", 1)) < 0))
		goto out;
	r = fs_write_atomic(a->cred_dirfd, name, buf, len, 0600);
out:
	explicit_bzero(buf, cap);
	free(buf);
	return r;
}

int
credstore_delete(struct agent *a, const char *backend_id)
{
	char name[64];
	int r = file_name(backend_id, name, sizeof name);

	if (r < 0)
		return r;
	if (unlinkat(a->cred_dirfd, name, 0) < 0 && errno != ENOENT)
		return negerrno();
	fsync(a->cred_dirfd);
	return 0;
}

int
credstore_read(struct agent *a, const char *backend_id, struct secret **ret)
{
	char name[64], *text = NULL;
	size_t len = 0;
	int r = file_name(backend_id, name, sizeof name);

	if (r < 0)
		return r;
	r = fs_read_file(a->cred_dirfd, name, 8192, &text, &len);
	if (r < 0)
		return r;
	r = secret_new(text, len, ret);
	explicit_bzero(text, len);
	free(text);
	return r;
}
