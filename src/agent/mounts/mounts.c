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
mount_table_new(const struct mount_ops *ops, struct mount_table **ret)
{
	struct mount_table *t = calloc(1, sizeof *t);

	if (!t)
		return -ENOMEM;
	t->ops = ops;
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

void
mounts_rec_free(struct backend_rec *b)
{
	smb_mount_spec_release(&b->b.spec);
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
		mounts_rec_free(b);
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
		if (!strcmp(b->b.id, id))
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
mounts_still_mounted(const struct mount_table *t, const struct mount_entry *e)
{
	/* When mountinfo cannot be read, assume it still is. */
	return t->ops->is_mounted(e->mount_point, e->source) != 0;
}

/* A mount point for a new entry: <base>/<server>:<share>, or with a ~N
 * suffix when another identity (or a foreign mount) already has it. */
static int
choose_mount_point(struct mount_table *t, const struct smb_mount_spec *s, const char *base,
	char *buf, size_t bufsz)
{
	struct mountinfo_entry *mi = NULL;
	size_t n = 0;
	int r = -EEXIST;

	if (mountinfo_read(&mi, &n) < 0)
		n = 0;
	for (unsigned i = 1; i < 100 && r == -EEXIST; i++) {
		char cand[PATH_MAX];
		bool taken = false;
		int k = i == 1 ? snprintf(cand, sizeof cand, "%s/%s:%s", base, s->server,
					 s->share)
			       : snprintf(cand, sizeof cand, "%s/%s:%s~%u", base,
					 s->server, s->share, i);
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

/* Under the lock: the entry for (key, credentials) a request may use. A
 * failed entry still referenced by backends is retried in place; an
 * unreferenced failed one only lives for its waiters. */
static struct mount_entry *
find_entry_locked(struct mount_table *t, const char *key, const struct secret *cred_snap)
{
	struct mount_entry *e = NULL;

	for (struct mount_entry *x = t->mounts; x; x = x->next)
		if (!strcmp(x->key, key) && secret_equal(x->cred, cred_snap) &&
			(x->state != ME_FAILED || x->refs))
			e = x;
	return e;
}

static bool
settling(const struct mount_entry *e)
{
	return e->state == ME_MOUNTING || e->state == ME_UNMOUNTING;
}

/* Under the lock: wait for the one attempt on e in progress to end. 0 to
 * look again (mounted, or unmounted meanwhile); -EIO with err when the
 * attempt failed. A failed entry nobody else needs is freed. */
static int
wait_settled_locked(struct mount_table *t, struct mount_entry *e, struct nq_error *err)
{
	struct nq_error f;

	e->waiters++;
	while (settling(e))
		pthread_cond_wait(&t->changed, &t->lock);
	e->waiters--;
	if (e->state != ME_FAILED)
		return 0;
	f = e->failure;
	if (e->waiters == 0 && e->refs == 0) {
		unlink_entry(t, e);
		mounts_entry_free(e);
	}
	if (!f.code[0])
		return 0;
	if (err)
		*err = f;
	return -EIO;
}

/* Under the lock: a new entry for (s, base) in the table, not mounted. */
static int
new_entry_locked(struct mount_table *t, const char *key, const struct smb_mount_spec *s,
	const char *base, const struct secret *cred_snap, struct mount_entry **ret,
	struct nq_error *err)
{
	struct mount_entry *e = calloc(1, sizeof *e);
	int r;

	if (!e)
		return -ENOMEM;
	snprintf(e->key, sizeof e->key, "%s", key);
	if ((cred_snap && (r = secret_new(cred_snap->buf, cred_snap->len, &e->cred)) < 0) ||
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
	*ret = e;
	return 0;
}

/* Under the lock: record the failed attempt on e for its waiters, and
 * free e when nobody else needs it. */
static void
mount_failed_locked(struct mount_table *t, struct mount_entry *e,
	const struct nq_error *merr, struct nq_error *err)
{
	rmdir(e->mount_point);
	e->failure = *merr;
	if (!e->failure.code[0])
		nq_error_set(&e->failure, "smb_mount_failed", NULL, "mounting %s failed",
			e->source);
	e->state = ME_FAILED;
	e->health = MH_DEAD;
	snprintf(e->health_message, sizeof e->health_message, "%s", e->failure.message);
	pthread_cond_broadcast(&t->changed);
	if (err)
		*err = e->failure;
	if (e->waiters == 0 && e->refs == 0) {
		unlink_entry(t, e);
		mounts_entry_free(e);
	}
}

/* Under the lock, e MOUNTING: mount it with the lock released. On success
 * e is MOUNTED and pinned; on failure it is FAILED (or freed). */
static int
mount_entry_locked(struct agent *a, struct mount_entry *e, const char *cred_id,
	const struct smb_mount_spec *s, const char *base, struct nq_error *err)
{
	struct mount_table *t = a->mounts;
	char cred[PATH_MAX] = "";
	bool ku = t->kernel_unavailable;
	enum mount_driver drv = DRIVER_FUSE;
	struct nq_error merr = { 0 };
	int r;

	pthread_mutex_unlock(&t->lock);
	if (s->username[0])
		credstore_path(a, cred_id, cred, sizeof cred);
	r = prepare_mount_point(base, e->mount_point);
	if (r < 0)
		nq_error_set(&merr, "smb_mount_failed", "mount_base",
			"cannot create the mount point %s: %s", e->mount_point,
			strerror(-r));
	else
		r = t->ops->mount(a, s, s->username[0] ? cred : NULL, e->mount_point, &ku,
			&drv, &merr);
	pthread_mutex_lock(&t->lock);
	t->kernel_unavailable = ku;
	if (r < 0) {
		mount_failed_locked(t, e, &merr, err);
		return r;
	}
	log_info("mounted source=%s mount_point=%s driver=%s", e->source, e->mount_point,
		mount_driver_name(drv));
	e->driver = drv;
	e->state = ME_MOUNTED;
	e->health = MH_OK;
	e->health_message[0] = '\0';
	e->enotconn = 0;
	e->pins++;
	pthread_cond_broadcast(&t->changed);
	return 0;
}

/* See internal.h. */
int
mounts_acquire_locked(struct agent *a, const char *cred_id, const struct smb_mount_spec *s,
	const char *base, const struct secret *cred_snap, struct mount_entry **ret,
	bool *ret_reused, struct nq_error *err)
{
	struct mount_table *t = a->mounts;
	struct mount_entry *e;
	char key[2048];
	int r = mounts_make_key(s, base, key, sizeof key);

	if (r < 0)
		return nq_error_setr(err, r, "invalid_field", NULL,
			"mount identity too long");
	for (;;) {
		e = find_entry_locked(t, key, cred_snap);
		if (e && settling(e)) {
			if ((r = wait_settled_locked(t, e, err)) < 0)
				return r;
			continue;
		}
		if (e && e->state == ME_MOUNTED && mounts_still_mounted(t, e)) {
			e->pins++;
			break;
		}
		if (e)
			log_warn("share is not mounted any more, mounting again "
				 "mount_point=%s",
				e->mount_point);
		else if ((r = new_entry_locked(t, key, s, base, cred_snap, &e, err)) < 0)
			return r;
		e->state = ME_MOUNTING;
		if ((r = mount_entry_locked(a, e, cred_id, s, base, err)) < 0)
			return r;
		if (ret_reused)
			*ret_reused = false;
		*ret = e;
		return 0;
	}
	if (ret_reused)
		*ret_reused = true;
	*ret = e;
	return 0;
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
	int r = t->ops->unmount(a, e->mount_point);
	pthread_mutex_lock(&t->lock);
	if (r < 0) {
		log_warn("unmount failed mount_point=%s err=%s", e->mount_point,
			strerror(-r));
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
