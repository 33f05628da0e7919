/* The mount table. Locking: one mutex guards the lists; a condition
 * variable is broadcast whenever an entry changes state. Slow work (running
 * a mount helper, probing, unmounting) happens with the lock released while
 * the entry is MOUNTING or UNMOUNTING, so other identities proceed and
 * requests for the same identity wait for the one attempt. */
#include "agent/mounts/mounts.h"
#include "agent/storage/volumes.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "agent/smb/credstore.h"
#include "agent/mounts/mountinfo.h"
#include "agent/smb/mount.h"
#include "agent/mounts/store.h"

#include "agent/mounts/internal.h"

int
mount_table_new(struct mount_table **ret)
{
	struct mount_table *t = calloc(1, sizeof *t);

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->changed, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->watch_wake, &ca);
	pthread_condattr_destroy(&ca);
	*ret = t;
	return 0;
}

void
mounts_entry_free(struct mount_entry *e)
{
	secret_free(e->cred);
	smb_mount_spec_release(&e->spec);
	free(e);
}

static void
rec_free(struct backend_rec *b)
{
	smb_mount_spec_release(&b->spec);
	free(b);
}

void
mount_table_free(struct mount_table *t)
{
	if (!t)
		return;
	while (t->mounts) {
		struct mount_entry *e = t->mounts;
		t->mounts = e->next;
		mounts_entry_free(e);
	}
	while (t->backends) {
		struct backend_rec *b = t->backends;
		t->backends = b->next;
		rec_free(b);
	}
	pthread_cond_destroy(&t->changed);
	pthread_cond_destroy(&t->watch_wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

const char *
mount_driver_name(enum mount_driver d)
{
	return d == DRIVER_KERNEL ? "kernel" : d == DRIVER_FUSE ? "fuse" : "auto";
}

int
mounts_make_key(const struct smb_mount_spec *s, const char *base, char *buf, size_t bufsz)
{
	char k[1800];
	int r = smb_spec_key(s, k, sizeof k);

	if (r < 0)
		return r;
	r = snprintf(buf, bufsz, "%s|%s", k, base);
	return r < 0 || (size_t)r >= bufsz ? -ENAMETOOLONG : 0;
}

struct backend_rec *
mounts_find_rec(struct mount_table *t, const char *id)
{
	for (struct backend_rec *b = t->backends; b; b = b->next)
		if (!strcmp(b->id, id))
			return b;
	return NULL;
}

static void
unlink_entry(struct mount_table *t, struct mount_entry *e)
{
	for (struct mount_entry **pp = &t->mounts; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			return;
		}
}

bool
mounts_still_mounted(const struct mount_entry *e)
{
	/* When mountinfo cannot be read, assume it still is. */
	return mountinfo_has_smb(e->mount_point, e->source) != 0;
}

/* A mount point for a new entry: <base>/<server>:<share>, or with a ~N
 * suffix when another identity (or a foreign mount) already has it. */
static int
choose_mount_point(struct mount_table *t, const struct smb_mount_spec *s,
	const char *base, char *buf, size_t bufsz)
{
	struct mountinfo_entry *mi = NULL;
	size_t n = 0;
	int r = -EEXIST;

	if (mountinfo_read(&mi, &n) < 0)
		n = 0;
	for (unsigned i = 1; i < 100 && r == -EEXIST; i++) {
		char cand[PATH_MAX];
		bool taken = false;
		int k = i == 1 ? snprintf(cand, sizeof cand, "%s/%s:%s", base, s->server, s->share)
			       : snprintf(cand, sizeof cand, "%s/%s:%s~%u", base, s->server,
				       s->share, i);
		if (k < 0 || (size_t)k >= sizeof cand) {
			r = -ENAMETOOLONG;
			break;
		}
		for (struct mount_entry *e = t->mounts; e; e = e->next)
			if (!strcmp(e->mount_point, cand) &&
			    (e->state != ME_FAILED || e->refs))
				taken = true;
		if (!taken && mountinfo_find(mi, n, cand))
			taken = true;
		if (!taken) {
			snprintf(buf, bufsz, "%s", cand);
			r = 0;
		}
	}
	mountinfo_free(mi, n);
	return r;
}

/* Create the mount point directory: base with mkdir -p, the leaf without
 * following a symlink, and check the result really is that directory. */
static int
prepare_mount_point(const char *base, const char *mp)
{
	struct stat st;
	char real[PATH_MAX];
	int r = fs_mkdir_p(base, 0700);

	if (r < 0)
		return r;
	if (mkdir(mp, 0700) < 0 && errno != EEXIST)
		return negerrno();
	if (lstat(mp, &st) < 0)
		return negerrno();
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	if (!realpath(mp, real) || strcmp(real, mp) != 0)
		return -ELOOP;
	return 0;
}

/* See mounts_internal.h. */
int
mounts_acquire_locked(struct agent *a, const char *cred_id, const struct smb_mount_spec *s,
	const char *base, const struct secret *cred_snap, struct mount_entry **ret,
	bool *ret_reused, struct nq_error *err)
{
	struct mount_table *t = a->mounts;
	char key[2048];
	int r = mounts_make_key(s, base, key, sizeof key);

	if (r < 0)
		return nq_error_setr(err, r, "invalid_field", NULL, "mount identity too long");
	for (;;) {
		struct mount_entry *e = NULL;

		/* A failed entry still referenced by backends is retried in
		 * place; an unreferenced failed one only lives for its waiters. */
		for (struct mount_entry *x = t->mounts; x; x = x->next)
			if (!strcmp(x->key, key) && secret_equal(x->cred, cred_snap) &&
			    (x->state != ME_FAILED || x->refs))
				e = x;
		if (e && (e->state == ME_MOUNTING || e->state == ME_UNMOUNTING)) {
			e->waiters++;
			while (e->state == ME_MOUNTING || e->state == ME_UNMOUNTING)
				pthread_cond_wait(&t->changed, &t->lock);
			e->waiters--;
			if (e->state == ME_FAILED) {
				struct nq_error f = e->failure;

				if (e->waiters == 0 && e->refs == 0) {
					unlink_entry(t, e);
					mounts_entry_free(e);
				}
				if (f.code[0]) {
					if (err)
						*err = f;
					return -EIO;
				}
			}
			continue; /* look again: mounted, or unmounted meanwhile */
		}
		if (e && e->state == ME_MOUNTED && mounts_still_mounted(e)) {
			e->pins++;
			*ret = e;
			if (ret_reused)
				*ret_reused = true;
			return 0;
		}
		if (e) {
			log_warn("share is not mounted any more, mounting again "
				 "mount_point=%s", e->mount_point);
		} else {
			e = calloc(1, sizeof *e);
			if (!e)
				return -ENOMEM;
			snprintf(e->key, sizeof e->key, "%s", key);
			if ((cred_snap && (r = secret_new(cred_snap->buf, cred_snap->len,
						   &e->cred)) < 0) ||
			    (r = smb_mount_spec_copy(s, &e->spec)) < 0 ||
			    (r = choose_mount_point(t, s, base, e->mount_point,
				     sizeof e->mount_point)) < 0) {
				mounts_entry_free(e);
				return nq_error_setr(err, r, "smb_mount_failed", NULL,
					"no usable mount point under %s: %s", base, strerror(-r));
			}
			smb_unc(s, e->source, sizeof e->source);
			e->next = t->mounts;
			t->mounts = e;
		}
		e->state = ME_MOUNTING;

		/* Mount with the lock released; this entry is MOUNTING. */
		char cred[PATH_MAX] = "";
		bool ku = t->kernel_unavailable;
		enum mount_driver drv = DRIVER_FUSE;
		struct nq_error merr = { 0 };

		pthread_mutex_unlock(&t->lock);
		if (s->username[0])
			credstore_path(a, cred_id, cred, sizeof cred);
		r = prepare_mount_point(base, e->mount_point);
		if (r < 0)
			nq_error_set(&merr, "smb_mount_failed", "mount_base",
				"cannot create the mount point %s: %s", e->mount_point,
				strerror(-r));
		else
			r = smb_mount_run(a, s, s->username[0] ? cred : NULL,
				e->mount_point, &ku, &drv, &merr);
		pthread_mutex_lock(&t->lock);
		t->kernel_unavailable = ku;
		if (r < 0) {
			rmdir(e->mount_point);
			e->failure = merr;
			if (!e->failure.code[0])
				nq_error_set(&e->failure, "smb_mount_failed", NULL,
					"mounting %s failed", e->source);
			e->state = ME_FAILED;
			e->health = MH_DEAD;
			snprintf(e->health_message, sizeof e->health_message, "%s",
				e->failure.message);
			pthread_cond_broadcast(&t->changed);
			if (err)
				*err = e->failure;
			if (e->waiters == 0 && e->refs == 0) {
				unlink_entry(t, e);
				mounts_entry_free(e);
			}
			return r;
		}
		log_info("mounted source=%s mount_point=%s driver=%s", e->source,
			e->mount_point, mount_driver_name(drv));
		e->driver = drv;
		e->state = ME_MOUNTED;
		e->health = MH_OK;
		e->health_message[0] = '\0';
		e->enotconn = 0;
		e->pins++;
		pthread_cond_broadcast(&t->changed);
		*ret = e;
		if (ret_reused)
			*ret_reused = false;
		return 0;
	}
}

/* Unmount when no pin or reference remains. Lock held; it is released and
 * retaken around the unmount. */
void
mounts_release_locked(struct agent *a, struct mount_entry *e)
{
	struct mount_table *t = a->mounts;

	if (e->refs || e->pins || e->state != ME_MOUNTED)
		return;
	e->state = ME_UNMOUNTING;
	pthread_mutex_unlock(&t->lock);
	int r = smb_unmount_run(a, e->mount_point);
	pthread_mutex_lock(&t->lock);
	if (r < 0) {
		log_warn("unmount failed mount_point=%s err=%s", e->mount_point, strerror(-r));
		e->state = ME_MOUNTED;
	} else {
		log_info("unmounted source=%s mount_point=%s", e->source, e->mount_point);
		unlink_entry(t, e);
		pthread_cond_broadcast(&t->changed);
		/* Waiters see FAILED with no code and look again. */
		e->state = ME_FAILED;
		memset(&e->failure, 0, sizeof e->failure);
		if (e->waiters == 0)
			mounts_entry_free(e);
		return;
	}
	pthread_cond_broadcast(&t->changed);
}

static int
volume_dir_of(const struct mount_entry *e, const char *subdir, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s%s%s", e->mount_point, subdir[0] ? "/" : "", subdir);

	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}

static void
persist_locked(struct agent *a, const struct backend_rec *b)
{
	struct stored_backend sb = { 0 };

	snprintf(sb.id, sizeof sb.id, "%s", b->id);
	sb.spec = b->spec; /* shallow: only read */
	snprintf(sb.subdir, sizeof sb.subdir, "%s", b->subdir);
	snprintf(sb.mount_base, sizeof sb.mount_base, "%s", b->mount_base);
	if (b->m) {
		snprintf(sb.mount_point, sizeof sb.mount_point, "%s", b->m->mount_point);
		snprintf(sb.driver, sizeof sb.driver, "%s", mount_driver_name(b->m->driver));
	}
	int r = store_backend_save(a, &sb);
	if (r < 0)
		log_warn("cannot save backend record backend_id=%s err=%s", b->id,
			strerror(-r));
}

int
mounts_attach(struct agent *a, const struct mount_request *req,
	struct mount_result *ret, struct nq_error *err)
{
	struct mount_table *t = a->mounts;
	struct mount_entry *e = NULL;
	struct backend_rec *b;
	struct mount_result res = { 0 };
	_cleanup_secret_ struct secret *cred = NULL;
	int r;

	if (req->spec.username[0] && credstore_read(a, req->backend_id, &cred) < 0)
		return nq_error_setr(err, -ENOENT, "smb_cred_missing", NULL,
			"no credentials are stored for backend %s; save the backend's "
			"password again (PUT /v1/storage/smb/credentials/%s)",
			req->backend_id, req->backend_id);

	pthread_mutex_lock(&t->lock);
	bool reused = false;
	r = mounts_acquire_locked(a, req->backend_id, &req->spec, req->mount_base, cred, &e,
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
		credstore_path(a, req->backend_id, cred_path, sizeof cred_path);
		r = smb_check_credentials(a, &req->spec, cred_path, e->mount_point, err);
	}
	if (r >= 0)
		r = smb_probe_writable(&req->spec, e->mount_point, req->subdir,
			(int)a->cfg.probe_timeout * 1000, err);

	pthread_mutex_lock(&t->lock);
	if (r < 0) {
		e->pins--;
		mounts_release_locked(a, e);
		pthread_mutex_unlock(&t->lock);
		return r;
	}
	b = mounts_find_rec(t, req->backend_id);
	if (!b) {
		b = calloc(1, sizeof *b);
		if (!b) {
			e->pins--;
			mounts_release_locked(a, e);
			pthread_mutex_unlock(&t->lock);
			return -ENOMEM;
		}
		snprintf(b->id, sizeof b->id, "%s", req->backend_id);
		b->next = t->backends;
		t->backends = b;
	}
	struct mount_entry *old = b->m;
	smb_mount_spec_release(&b->spec);
	smb_mount_spec_copy(&req->spec, &b->spec);
	snprintf(b->subdir, sizeof b->subdir, "%s", req->subdir);
	snprintf(b->mount_base, sizeof b->mount_base, "%s", req->mount_base);
	if (old != e) {
		e->refs++;
		b->m = e;
	}
	persist_locked(a, b);
	snprintf(res.mount_point, sizeof res.mount_point, "%s", e->mount_point);
	(void)volume_dir_of(e, b->subdir, res.volume_dir, sizeof res.volume_dir);
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
		rec_free(b);
	} else {
		store_backend_remove(a, backend_id);
	}
	pthread_mutex_unlock(&t->lock);
	return 0;
}

int
mounts_pin_volume_dir(struct agent *a, const char *backend_id, char *buf,
	size_t bufsz, enum mount_driver *ret_driver, struct nq_error *err)
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
			"(POST /v1/storage/smb/mounts)", backend_id);
	}
	/* The backend's own live mount serves it even after a password
	 * rotation; only a missing mount is made again, with current creds. */
	if (b->m && b->m->state == ME_MOUNTED && mounts_still_mounted(b->m)) {
		e = b->m;
		e->pins++;
		r = volume_dir_of(e, b->subdir, buf, bufsz);
		if (ret_driver)
			*ret_driver = e->driver;
		pthread_mutex_unlock(&t->lock);
		return r;
	}
	_cleanup_secret_ struct secret *cred = NULL;
	if (b->spec.username[0] && credstore_read(a, backend_id, &cred) < 0) {
		pthread_mutex_unlock(&t->lock);
		return nq_error_setr(err, -ENOENT, "smb_cred_missing", NULL,
			"no credentials are stored for backend %s; save the backend's "
			"password again", backend_id);
	}
	r = mounts_acquire_locked(a, backend_id, &b->spec, b->mount_base, cred, &e, NULL, err);
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
	r = volume_dir_of(e, b ? b->subdir : "", buf, bufsz);
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
		r = smb_mount_spec_copy(&b->spec, ret);
		snprintf(ret_dir, dirsz, "%s", b->m ? b->m->mount_point : b->mount_base);
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}
