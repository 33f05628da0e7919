/* The backends' side of the mount table: attach a backend (mount or
 * share a mount, prove it writable, reference it, persist the record),
 * detach, pin the volume dir for an operation, unpin. The mount entries'
 * state machine itself is mounts.c. */
#include "agent/mounts/mounts.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "agent/mounts/internal.h"
#include "agent/mounts/store.h"
#include "agent/smb/credstore.h"
#include "agent/smb/mount.h"

static int
volume_dir_of(const struct mount_entry *e, const char *subdir, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s%s%s", e->mount_point, subdir[0] ? "/" : "",
		subdir);

	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

static void
persist_locked(struct agent *a, const struct backend_rec *b)
{
	struct stored_backend sb = { 0 };

	sb.b = b->b; /* shallow: spec.opts is only read */
	if (b->m) {
		snprintf(sb.mount_point, sizeof sb.mount_point, "%s", b->m->mount_point);
		snprintf(sb.driver, sizeof sb.driver, "%s",
			mount_driver_name(b->m->driver));
	}
	int r = store_backend_save(a, &sb);
	if (r < 0)
		log_warn("cannot save backend record backend_id=%s err=%s", b->b.id,
			strerror(-r));
}

int
mounts_attach(struct agent *a, const struct smb_backend *req, struct mount_result *ret,
	struct nq_error *err)
{
	struct mount_table *t = a->mounts;
	struct mount_entry *e = NULL;
	struct backend_rec *b;
	struct mount_result res = { 0 };
	_cleanup_secret_ struct secret *cred = NULL;
	int r;

	if (req->spec.username[0] && credstore_read(a, req->id, &cred) < 0)
		return nq_error_setr(err, -ENOENT, "smb_cred_missing", NULL,
			"no credentials are stored for backend %s; save the backend's "
			"password again (PUT /v1/storage/smb/credentials/%s)",
			req->id, req->id);

	pthread_mutex_lock(&t->lock);
	bool reused = false;
	r = mounts_acquire_locked(a, req->id, &req->spec, req->mount_base, cred, &e,
		&reused, err);
	if (r < 0) {
		pthread_mutex_unlock(&t->lock);
		return r;
	}
	pthread_mutex_unlock(&t->lock);

	/* Sharing a live mount must not skip authentication: the server may
	 * have changed the password since the mount was made. */
	r = 0;
	if (reused && req->spec.username[0]) {
		char cred_path[PATH_MAX];
		credstore_path(a, req->id, cred_path, sizeof cred_path);
		r = t->ops->check_credentials(a, &req->spec, cred_path, e->mount_point,
			err);
	}
	if (r >= 0)
		r = t->ops->probe_writable(&req->spec, e->mount_point, req->subdir,
			(int)a->cfg.probe_timeout * 1000, err);

	pthread_mutex_lock(&t->lock);
	if (r < 0) {
		e->pins--;
		mounts_release_locked(a, e);
		pthread_mutex_unlock(&t->lock);
		return r;
	}
	b = mounts_find_rec(t, req->id);
	if (!b) {
		b = calloc(1, sizeof *b);
		if (!b) {
			e->pins--;
			mounts_release_locked(a, e);
			pthread_mutex_unlock(&t->lock);
			return -ENOMEM;
		}
		snprintf(b->b.id, sizeof b->b.id, "%s", req->id);
		b->next = t->backends;
		t->backends = b;
	}
	struct mount_entry *old = b->m;
	smb_backend_release(&b->b);
	(void)smb_backend_copy(req, &b->b);
	if (old != e) {
		e->refs++;
		b->m = e;
	}
	persist_locked(a, b);
	snprintf(res.mount_point, sizeof res.mount_point, "%s", e->mount_point);
	(void)volume_dir_of(e, b->b.subdir, res.volume_dir, sizeof res.volume_dir);
	res.driver = e->driver;
	e->pins--;
	if (old && old != e) {
		old->refs--;
		mounts_release_locked(a, old);
	}
	pthread_mutex_unlock(&t->lock);
	*ret = res;
	return 0;
}

int
mounts_detach(struct agent *a, const char *backend_id, struct nq_error *err)
{
	struct mount_table *t = a->mounts;
	struct backend_rec *b;
	(void)err;

	pthread_mutex_lock(&t->lock);
	b = mounts_find_rec(t, backend_id);
	if (b) {
		for (struct backend_rec **pp = &t->backends; *pp; pp = &(*pp)->next)
			if (*pp == b) {
				*pp = b->next;
				break;
			}
		store_backend_remove(a, backend_id);
		if (b->m) {
			b->m->refs--;
			mounts_release_locked(a, b->m);
		}
		mounts_rec_free(b);
	} else {
		store_backend_remove(a, backend_id);
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int
mounts_pin_volume_dir(struct agent *a, const char *backend_id, char *buf, size_t bufsz,
	enum mount_driver *ret_driver, struct nq_error *err)
{
	struct mount_table *t = a->mounts;
	struct mount_entry *e = NULL;
	struct backend_rec *b;
	int r;

	pthread_mutex_lock(&t->lock);
	b = mounts_find_rec(t, backend_id);
	if (!b) {
		pthread_mutex_unlock(&t->lock);
		return nq_error_setr(err, -ENOENT, "not_found", "backend_id",
			"backend %s has no mount on this host; mount it first "
			"(POST /v1/storage/smb/mounts)",
			backend_id);
	}
	/* The backend's own live mount serves it even after a password
	 * rotation; only a missing mount is made again, with current creds. */
	if (b->m && b->m->state == ME_MOUNTED && mounts_still_mounted(t, b->m)) {
		e = b->m;
		e->pins++;
		r = volume_dir_of(e, b->b.subdir, buf, bufsz);
		if (ret_driver)
			*ret_driver = e->driver;
		pthread_mutex_unlock(&t->lock);
		return r;
	}
	_cleanup_secret_ struct secret *cred = NULL;
	if (b->b.spec.username[0] && credstore_read(a, backend_id, &cred) < 0) {
		pthread_mutex_unlock(&t->lock);
		return nq_error_setr(err, -ENOENT, "smb_cred_missing", NULL,
			"no credentials are stored for backend %s; save the backend's "
			"password again",
			backend_id);
	}
	r = mounts_acquire_locked(a, backend_id, &b->b.spec, b->b.mount_base, cred, &e,
		NULL, err);
	if (r < 0) {
		pthread_mutex_unlock(&t->lock);
		return r;
	}
	/* The record may have been remounted on a new entry. */
	b = mounts_find_rec(t, backend_id);
	if (b && b->m != e) {
		struct mount_entry *old = b->m;
		e->refs++;
		b->m = e;
		persist_locked(a, b);
		if (old) {
			old->refs--;
			mounts_release_locked(a, old);
		}
	}
	r = volume_dir_of(e, b ? b->b.subdir : "", buf, bufsz);
	if (ret_driver)
		*ret_driver = e->driver;
	pthread_mutex_unlock(&t->lock);
	return r;
}

void
mounts_unpin(struct agent *a, const char *backend_id)
{
	struct mount_table *t = a->mounts;
	struct backend_rec *b;

	pthread_mutex_lock(&t->lock);
	b = mounts_find_rec(t, backend_id);
	if (b && b->m && b->m->pins) {
		b->m->pins--;
		mounts_release_locked(a, b->m);
	}
	pthread_mutex_unlock(&t->lock);
}

int
mounts_backend_spec(struct agent *a, const char *backend_id, struct smb_mount_spec *ret,
	char *ret_dir, size_t dirsz)
{
	struct mount_table *t = a->mounts;
	struct backend_rec *b;
	int r = -ENOENT;

	pthread_mutex_lock(&t->lock);
	b = mounts_find_rec(t, backend_id);
	if (b) {
		r = smb_mount_spec_copy(&b->b.spec, ret);
		snprintf(ret_dir, dirsz, "%s", b->m ? b->m->mount_point : b->b.mount_base);
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}
