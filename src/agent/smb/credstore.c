#include "agent/smb/credstore.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fsutil.h"
#include "common/macro.h"
#include "common/nq_buf.h"

/* The largest credentials file: credstore_read reads no more. */
#define CRED_FILE_MAX 8192

static int
file_name_ext(const char *backend_id, const char *ext, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s%s", backend_id, ext);
	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

static int
file_name(const char *backend_id, char *buf, size_t bufsz)
{
	return file_name_ext(backend_id, ".cred", buf, bufsz);
}

static int
path_ext(const struct agent *a, const char *backend_id, const char *ext, char *buf,
	size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s/%s%s", a->cfg.cred_dir, backend_id, ext);
	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

int
credstore_path(const struct agent *a, const char *backend_id, char *buf, size_t bufsz)
{
	return path_ext(a, backend_id, ".cred", buf, bufsz);
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
	return path_ext(a, backend_id, ".cred.new", buf, bufsz);
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

/* The file's content is built in a wiping buffer: it holds the password. */
static int
put_as(struct agent *a, const char *backend_id, const char *ext, const char *username,
	const char *password, size_t password_len, const char *domain)
{
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(CRED_FILE_MAX, true);
	char name[64];
	int r;

	r = file_name_ext(backend_id, ext, name, sizeof name);
	if (r < 0)
		return r;
	if ((r = nq_buf_addf(&b, "username=%s\npassword=", username)) < 0 ||
		(r = nq_buf_add(&b, password, password_len)) < 0 ||
		(r = nq_buf_add(&b, "\n", 1)) < 0)
		return r;
	if (domain && *domain && (r = nq_buf_addf(&b, "domain=%s\n", domain)) < 0)
		return r;
	return fs_write_atomic(a->cred_dirfd, name, b.p, b.len, 0600);
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
	r = fs_read_file(a->cred_dirfd, name, CRED_FILE_MAX, &text, &len);
	if (r < 0)
		return r;
	r = secret_new(text, len, ret);
	explicit_bzero(text, len);
	free(text);
	return r;
}
