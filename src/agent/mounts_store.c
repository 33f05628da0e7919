#include "agent/mounts_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/fsutil.h"
#include "common/http_server.h"
#include "common/log.h"

#define BACKENDS_DIR "backends"

static int
dirfd_backends(struct agent *a)
{
	return fs_mkdir_beneath(a->state_dirfd, BACKENDS_DIR, 0700);
}

int
store_backend_save(struct agent *a, const struct stored_backend *b)
{
	_cleanup_close_ int dfd = dirfd_backends(a);
	char opts[NQ_OPTS_MAX + 1] = "";

	if (dfd < 0)
		return dfd;
	mount_opts_join(&b->spec.opts, opts, sizeof opts);
	return json_save_record(dfd, b->id,
		json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
		"backend_id", b->id, "server", b->spec.server, "share", b->spec.share,
		"username", b->spec.username, "domain", b->spec.domain,
		"smb_version", b->spec.version, "mount_options", opts,
		"subdir", b->subdir, "mount_base", b->mount_base,
		"mount_point", b->mount_point, "driver", b->driver));
}

int
store_backend_remove(struct agent *a, const char *id)
{
	_cleanup_close_ int dfd = dirfd_backends(a);
	char name[64];

	if (dfd < 0)
		return dfd;
	snprintf(name, sizeof name, "%s.json", id);
	if (unlinkat(dfd, name, 0) < 0 && errno != ENOENT)
		return negerrno();
	return 0;
}

static const char *
str(json_t *j, const char *k)
{
	const char *s = json_string_value(json_object_get(j, k));
	return s ? s : "";
}

static int
parse_record(json_t *j, struct stored_backend *b, struct nq_error *err)
{
	char uuid[NQ_UUID_LEN + 1];
	int r;

	if ((r = validate_uuid("backend_id", str(j, "backend_id"), uuid, err)) < 0 ||
	    (r = validate_server("server", str(j, "server"), b->spec.server,
		     sizeof b->spec.server, err)) < 0 ||
	    (r = validate_share("share", str(j, "share"), err)) < 0 ||
	    (r = validate_smb_version("smb_version", str(j, "smb_version"), err)) < 0 ||
	    (r = validate_subdir("subdir", str(j, "subdir"), b->subdir,
		     sizeof b->subdir, err)) < 0 ||
	    (r = validate_mount_options("mount_options", str(j, "mount_options"),
		     &b->spec.opts, err)) < 0)
		return r;
	if (*str(j, "username") && validate_username("username", str(j, "username"), err) < 0)
		return -EINVAL;
	if (*str(j, "domain") && validate_domain("domain", str(j, "domain"), err) < 0)
		return -EINVAL;
	snprintf(b->id, sizeof b->id, "%s", uuid);
	snprintf(b->spec.share, sizeof b->spec.share, "%s", str(j, "share"));
	snprintf(b->spec.username, sizeof b->spec.username, "%s", str(j, "username"));
	snprintf(b->spec.domain, sizeof b->spec.domain, "%s", str(j, "domain"));
	snprintf(b->spec.version, sizeof b->spec.version, "%s",
		*str(j, "smb_version") ? str(j, "smb_version") : "default");
	snprintf(b->mount_base, sizeof b->mount_base, "%s", str(j, "mount_base"));
	snprintf(b->mount_point, sizeof b->mount_point, "%s", str(j, "mount_point"));
	snprintf(b->driver, sizeof b->driver, "%s", str(j, "driver"));
	return 0;
}

int
store_backend_load_all(struct agent *a, void (*cb)(struct agent *a, struct stored_backend *b))
{
	_cleanup_close_ int dfd = dirfd_backends(a);
	DIR *d;
	struct dirent *de;
	int r;

	if (dfd < 0)
		return dfd;
	r = fs_opendir(dfd, &d);
	if (r < 0)
		return r;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		_cleanup_free_ char *text = NULL;
		size_t tl;
		struct nq_error err = { 0 };

		if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0 || de->d_name[0] == '.')
			continue;
		if (fs_read_file(dirfd(d), de->d_name, 64 * 1024, &text, &tl) < 0)
			continue;
		json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
		struct stored_backend *b = calloc(1, sizeof *b);
		if (!b) {
			json_decref(j);
			break;
		}
		if (j && parse_record(j, b, &err) >= 0 && a->mounts) {
			cb(a, b);
		} else {
			log_warn("skipping invalid backend record file=%s err=%s", de->d_name,
				err.message);
			smb_mount_spec_release(&b->spec);
		}
		free(b);
		json_decref(j);
	}
	closedir(d);
	return 0;
}
