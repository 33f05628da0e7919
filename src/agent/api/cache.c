/* GET and DELETE /v1/storage/smb/mounts/{backend_id}/cache[/{hash}]: a
 * backend's base cache (storage/basecache.h). */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "common/macro.h"
#include "agent/api/api.h"
#include "agent/storage/basecache.h"

/* The backend's volume dir, pinned; -errno after replying. */
static int
open_dir(struct http_request *req, struct http_response *resp, char id[NQ_UUID_LEN + 1],
	bool *alloc_known)
{
	struct nq_error err = { 0 };
	char path[PATH_MAX];
	int fd;

	if (KIND(req)->check_backend_id("backend_id", req->params[0], id, &err) < 0) {
		http_reply_error(resp, &err);
		return -EINVAL;
	}
	fd = KIND(req)->open_volume_dir(AGENT(req), id, path, sizeof path, alloc_known,
		&err);
	if (fd < 0)
		http_reply_error(resp, &err);
	return fd;
}

static void
reply_io(struct http_response *resp, int r, const char *what)
{
	struct nq_error err = { 0 };

	nq_error_setr(&err, r, "io_error", NULL, "%s failed: %s", what, strerror(-r));
	http_reply_error(resp, &err);
}

void
api_get_cache(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	bool alloc_known = true;
	_cleanup_close_ int fd = open_dir(req, resp, id, &alloc_known);
	json_t *out = NULL;
	int r;

	if (fd < 0)
		return;
	r = basecache_list(AGENT(req), id, fd, alloc_known, &out);
	KIND(req)->release_volume_dir(AGENT(req), id);
	if (r < 0)
		reply_io(resp, r, "listing the base cache");
	else
		http_reply_json(resp, 200, out);
}

void
api_delete_cache(struct http_request *req, struct http_response *resp)
{
	const char *hash = req->nparams > 1 ? req->params[1] : NULL;
	struct nq_error err = { 0 };
	char id[NQ_UUID_LEN + 1];
	_cleanup_close_ int fd = -1;
	json_t *out = NULL;
	int r;

	if (hash && !image_hash_valid(hash)) {
		nq_error_set(&err, "invalid_field", "hash",
			"hash must be 64 lower-case hexadecimal digits (a SHA-256)");
		http_reply_error(resp, &err);
		return;
	}
	fd = open_dir(req, resp, id, NULL);
	if (fd < 0)
		return;
	r = basecache_purge(AGENT(req), id, fd, hash, &out);
	KIND(req)->release_volume_dir(AGENT(req), id);
	if (r == -ENOENT) {
		nq_error_setr(&err, r, "not_found", "hash",
			"no base cache entry %s on this backend", hash);
		http_reply_error(resp, &err);
	} else if (r < 0) {
		reply_io(resp, r, "purging the base cache");
	} else {
		http_reply_json(resp, 200, out);
	}
}
