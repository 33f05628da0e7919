/* The mount health watchdog, the repair of a dead mount, and capacity.
 *
 * Every cfg.mount_check_interval seconds the watcher thread looks at each
 * mounted share: for a FUSE mount, whether its nqrust-smbfs process still
 * exists (smb/bridge.c), then a statvfs bounded by deadline.c (one call in
 * flight per mount point, a capped pool), so a hung server costs at most
 * one stuck thread whatever the number of checks. The verdict is kept on
 * the entry and reported by the mount list and by capacity.
 *
 * A dead FUSE mount (the bridge exited: the kernel then answers ENOTCONN
 * for everything on it) is detached with umount -l and mounted again with
 * the same spec and credentials on the same entry, so references and pins
 * stay valid. Files the VMMs had open on it died with the old FUSE
 * connection, so those VMs are ended and reported (vms_storage_lost). A
 * hand-over of the /dev/fuse fd to a new bridge was rejected: the requests
 * the dead bridge had read are never answered and node ids and file
 * handles lived in its memory (docs/mount-supervision.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "common/log.h"
#include "agent/mounts/deadline.h"
#include "agent/mounts/internal.h"
#include "agent/smb/bridge.h"
#include "agent/smb/mount.h"
#include "agent/vmm/vms.h"

const char *
mount_health_name(enum mount_health h)
{
	static const char *const names[] = { "ok", "hung", "dead", "repairing", "error" };

	return (unsigned)h < sizeof names / sizeof names[0] ? names[h] : "error";
}

struct check_ctx {
	char mount_point[PATH_MAX];
};

static int
check_fn(void *arg)
{
	struct check_ctx *c = arg;
	struct statvfs sv;

	return statvfs(c->mount_point, &sv) < 0 ? negerrno() : 0;
}

int
mounts_probe(const char *mount_point, int timeout_ms)
{
	struct check_ctx c;

	snprintf(c.mount_point, sizeof c.mount_point, "%s", mount_point);
	return deadline_run(mount_point, check_fn, &c, sizeof c, timeout_ms);
}

/* A health check must not hold up the round for long: the first check
 * of a hung mount waits at most this, later ones return at once. */
static int
check_timeout_ms(const struct agent *a)
{
	return (int)(a->cfg.probe_timeout < 5 ? a->cfg.probe_timeout : 5) * 1000;
}

struct target {
	char mount_point[PATH_MAX];
	enum mount_driver driver;
	unsigned enotconn;
};

/* The verdict on one mount; *ret_r is the probe's result. A FUSE mount
 * is dead when it answers ENOTCONN (what the kernel says once the bridge
 * is gone) and no bridge process serves it; ENOTCONN from a live bridge (a
 * server error passed through) needs a second look. */
static enum mount_health
probe_one(struct agent *a, const struct target *tg, int *ret_r)
{
	bool fuse = tg->driver == DRIVER_FUSE;
	int r = mounts_probe(tg->mount_point, check_timeout_ms(a));

	*ret_r = r;
	if (r >= 0)
		return MH_OK;
	if (r == -ETIMEDOUT || r == -EBUSY || r == -EAGAIN)
		return MH_HUNG;
	if (r == -ENOTCONN && fuse &&
		(tg->enotconn >= 1 || smb_bridge_alive(tg->mount_point) == 0))
		return MH_DEAD;
	return MH_ERROR;
}

static struct mount_entry *
find_mounted(struct mount_table *t, const char *mount_point)
{
	for (struct mount_entry *e = t->mounts; e; e = e->next)
		if (e->state == ME_MOUNTED && !strcmp(e->mount_point, mount_point))
			return e;
	return NULL;
}

static void
health_message(enum mount_health h, int r, unsigned timeout_s, char *buf, size_t bufsz)
{
	if (h == MH_OK)
		buf[0] = '\0';
	else if (h == MH_HUNG && r == -ETIMEDOUT)
		snprintf(buf, bufsz,
			"the SMB server did not answer a health check "
			"within %u s",
			timeout_s);
	else if (h == MH_HUNG)
		snprintf(buf, bufsz,
			"an earlier request to the SMB server on this mount "
			"has not returned yet");
	else if (h == MH_DEAD)
		snprintf(buf, bufsz,
			"the FUSE bridge (nqrust-smbfs) serving this mount "
			"exited; the mount answers ENOTCONN");
	else
		snprintf(buf, bufsz, "the health check failed: %s", strerror(-r));
}

/* Store the verdict; true when the mount must be repaired. */
static bool
record(struct agent *a, const struct target *tg, enum mount_health h, int r)
{
	struct mount_table *t = a->mounts;
	struct mount_entry *e;
	bool repair = false;

	pthread_mutex_lock(&t->lock);
	e = find_mounted(t, tg->mount_point);
	if (e) {
		e->enotconn = r == -ENOTCONN ? e->enotconn + 1 : 0;
		if (h != e->health && h == MH_OK)
			log_info("mount is healthy again mount_point=%s", e->mount_point);
		else if (h != e->health)
			log_warn("mount health=%s mount_point=%s err=%s",
				mount_health_name(h), e->mount_point, strerror(-r));
		e->health = h;
		health_message(h, r, (unsigned)check_timeout_ms(a) / 1000,
			e->health_message, sizeof e->health_message);
		repair = h == MH_DEAD;
	}
	pthread_mutex_unlock(&t->lock);
	return repair;
}

static int remount_locked(struct agent *a, struct mount_entry *e, struct nq_error *err);

static long long
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* A referenced mount whose repair (or remount) failed is tried again
 * every RETRY_S seconds, so it comes back without anyone using it. */
#define RETRY_S 10

static void
retry_failed(struct agent *a)
{
	struct mount_table *t = a->mounts;
	long long now = now_s();

	pthread_mutex_lock(&t->lock);
	for (struct mount_entry *e = t->mounts; e; e = e->next) {
		struct nq_error err = { 0 };
		if (e->state != ME_FAILED || !e->refs || e->retry_at > now)
			continue;
		if (e->retry_at == 0) {
			e->retry_at = now + RETRY_S; /* first sighting: wait a round */
			continue;
		}
		e->pins++;
		if (remount_locked(a, e, &err) >= 0)
			log_info("share mounted again mount_point=%s", e->mount_point);
		e->retry_at = e->state == ME_FAILED ? now_s() + RETRY_S : 0;
		e->pins--;
		mounts_release_locked(a, e);
		break; /* the list may have changed while unlocked */
	}
	pthread_mutex_unlock(&t->lock);
}

void
mounts_check_all(struct agent *a)
{
	struct mount_table *t = a->mounts;
	_cleanup_free_ struct target *tg = NULL;
	size_t n = 0, cap = 0;

	pthread_mutex_lock(&t->lock);
	for (struct mount_entry *e = t->mounts; e; e = e->next)
		cap += e->state == ME_MOUNTED;
	tg = cap ? calloc(cap, sizeof *tg) : NULL;
	for (struct mount_entry *e = t->mounts; e && tg && n < cap; e = e->next) {
		if (e->state != ME_MOUNTED)
			continue;
		snprintf(tg[n].mount_point, sizeof tg[n].mount_point, "%s", e->mount_point);
		tg[n].driver = e->driver;
		tg[n].enotconn = e->enotconn;
		n++;
	}
	pthread_mutex_unlock(&t->lock);
	for (size_t i = 0; i < n; i++) {
		int r = 0;
		enum mount_health h;

		/* Shutting down: a hung share must not hold the agent's exit
		 * for one probe per mount. */
		if (__atomic_load_n(&t->watch_stop, __ATOMIC_RELAXED))
			return;
		h = probe_one(a, &tg[i], &r);
		if (record(a, &tg[i], h, r))
			(void)mounts_repair(a, tg[i].mount_point);
	}
	retry_failed(a);
}

/* Under the lock: the ids of the backends referencing e (caller frees). */
static char (*backends_of(struct mount_table *t, const struct mount_entry *e,
	size_t *ret_n))[NQ_UUID_LEN + 1]
{
	char(*ids)[NQ_UUID_LEN + 1];
	size_t n = 0;

	for (struct backend_rec *b = t->backends; b; b = b->next)
		n += b->m == e;
	ids = calloc(n ? n : 1, sizeof *ids);
	n = 0;
	for (struct backend_rec *b = t->backends; b && ids; b = b->next)
		if (b->m == e)
			memcpy(ids[n++], b->b.id, sizeof *ids);
	*ret_n = ids ? n : 0;
	return ids;
}

/* Under the lock, e pinned: mount e again in place with the credentials
 * and mount base of a backend that references it. */
static int
remount_locked(struct agent *a, struct mount_entry *e, struct nq_error *err)
{
	struct mount_entry *got = NULL;
	struct backend_rec *b;
	int r;

	for (b = a->mounts->backends; b && b->m != e; b = b->next)
		;
	if (!b)
		return 0; /* only pinned: mounted again on its next use */
	char id[NQ_UUID_LEN + 1], base[PATH_MAX];
	snprintf(id, sizeof id, "%s", b->b.id);
	snprintf(base, sizeof base, "%s", b->b.mount_base);
	r = mounts_acquire_locked(a, id, &e->spec, base, e->cred, &got, NULL, err);
	if (r >= 0)
		got->pins--;
	return r;
}

int
mounts_repair(struct agent *a, const char *mount_point)
{
	struct mount_table *t = a->mounts;
	struct nq_error err = { 0 };
	struct mount_entry *e;
	size_t n = 0;
	int r;

	pthread_mutex_lock(&t->lock);
	e = find_mounted(t, mount_point);
	if (!e) {
		pthread_mutex_unlock(&t->lock);
		return 0; /* gone, or someone else is repairing it */
	}
	_cleanup_free_ char(*ids)[NQ_UUID_LEN + 1] = backends_of(t, e, &n);
	e->pins++;
	e->state = ME_UNMOUNTING; /* others wait for the repair */
	e->health = MH_REPAIRING;
	snprintf(e->health_message, sizeof e->health_message,
		"the mount was dead; detached, mounting the share again");
	pthread_mutex_unlock(&t->lock);
	unsigned long long before = vms_boot_ticks();

	log_warn("mount is dead, detaching it and mounting again mount_point=%s source=%s",
		mount_point, e->source);
	r = a->mounts->ops->unmount(a, mount_point);
	if (r < 0)
		log_warn("cannot detach the dead mount mount_point=%s err=%s", mount_point,
			strerror(-r));
	pthread_mutex_lock(&t->lock);
	e->state = ME_MOUNTED; /* gone from mountinfo: the next use remounts */
	pthread_cond_broadcast(&t->changed);
	pthread_mutex_unlock(&t->lock);

	vms_storage_lost(a, (const char(*)[NQ_UUID_LEN + 1]) ids, n, before);

	pthread_mutex_lock(&t->lock);
	r = e->state == ME_MOUNTED && mounts_still_mounted(a->mounts, e)
		    ? 0
		    : remount_locked(a, e, &err);
	if (r >= 0)
		log_info("dead mount repaired mount_point=%s", mount_point);
	else
		log_warn("mounting the share again failed mount_point=%s code=%s",
			mount_point, err.code);
	e->pins--;
	mounts_release_locked(a, e);
	pthread_mutex_unlock(&t->lock);
	return r;
}

bool
mounts_backend_lost(struct agent *a, const char *backend_id)
{
	struct mount_table *t = a->mounts;
	struct backend_rec *b;
	bool lost = false;

	pthread_mutex_lock(&t->lock);
	b = mounts_find_rec(t, backend_id);
	lost = b && b->lost;
	pthread_mutex_unlock(&t->lock);
	return lost;
}

static void *
watch_main(void *arg)
{
	struct agent *a = arg;
	struct mount_table *t = a->mounts;

	pthread_mutex_lock(&t->lock);
	while (!t->watch_stop) {
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += a->cfg.mount_check_interval;
		while (!t->watch_stop &&
			pthread_cond_timedwait(&t->watch_wake, &t->lock, &until) !=
				ETIMEDOUT)
			;
		if (t->watch_stop)
			break;
		pthread_mutex_unlock(&t->lock);
		mounts_check_all(a);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

void
mounts_watch_request_stop(struct agent *a)
{
	struct mount_table *t = a ? a->mounts : NULL;

	if (!t || !t->watching)
		return;
	pthread_mutex_lock(&t->lock);
	__atomic_store_n(&t->watch_stop, true, __ATOMIC_RELAXED);
	pthread_cond_signal(&t->watch_wake);
	pthread_mutex_unlock(&t->lock);
}

int
mounts_watch_start(struct agent *a)
{
	struct mount_table *t = a->mounts;
	int r;

	if (a->cfg.mount_check_interval == 0)
		return 0;
	r = pthread_create(&t->watcher, NULL, watch_main, a);
	if (r != 0)
		return -r;
	t->watching = true;
	return 0;
}

void
mounts_watch_stop(struct agent *a)
{
	struct mount_table *t = a ? a->mounts : NULL;

	if (!t || !t->watching)
		return;
	mounts_watch_request_stop(a);
	pthread_join(t->watcher, NULL);
	t->watching = false;
}

int
mounts_names_locked(struct mount_table *t, const char *backend_id, char *mp, size_t mpsz,
	char *unc, size_t uncsz)
{
	struct backend_rec *b = mounts_find_rec(t, backend_id);

	if (!b || !b->m)
		return -ENOENT;
	snprintf(mp, mpsz, "%s", b->m->mount_point);
	snprintf(unc, uncsz, "%s", b->m->source);
	return 0;
}

/* One capacity query on the pinned mount of backend_id. */
static int
capacity_once(struct agent *a, const char *backend_id, char *mp, size_t mpsz,
	struct capacity *ret, struct nq_error *err)
{
	struct mount_table *t = a->mounts;
	char dir[PATH_MAX], unc[600] = "";
	int r, timeout_ms = (int)a->cfg.probe_timeout * 1000;

	r = mounts_pin_volume_dir(a, backend_id, dir, sizeof dir, NULL, err);
	if (r < 0)
		return r;
	pthread_mutex_lock(&t->lock);
	r = mounts_names_locked(t, backend_id, mp, mpsz, unc, sizeof unc);
	pthread_mutex_unlock(&t->lock);
	if (r >= 0)
		r = smb_capacity(mp, dir, timeout_ms, ret);
	mounts_unpin(a, backend_id);
	if (r == -ETIMEDOUT || r == -EBUSY || r == -EAGAIN)
		return smb_timeout_error(unc, "a capacity query", r, timeout_ms, err);
	if (smb_conn_broken(r))
		return nq_error_setr(err, r, "smb_unreachable", NULL,
			"the SMB server of %s cannot be reached (%s); check that it is up "
			"and reachable from this host",
			unc, strerror(-r));
	if (r < 0)
		return nq_error_setr(err, r, "smb_mount_failed", NULL,
			"cannot read the share's capacity: %s", strerror(-r));
	return 0;
}

int
mounts_capacity(struct agent *a, const char *backend_id, struct capacity *ret,
	struct nq_error *err)
{
	struct mount_table *t = a->mounts;
	struct capacity c = { 0 };
	char mp[PATH_MAX] = "";
	int r;

	r = capacity_once(a, backend_id, mp, sizeof mp, &c, err);
	if (r == -ENOTCONN && mp[0] && smb_bridge_alive(mp) == 0) {
		/* The bridge died since the last health check: repair now. */
		if (err)
			memset(err, 0, sizeof *err);
		(void)mounts_repair(a, mp);
		r = capacity_once(a, backend_id, mp, sizeof mp, &c, err);
	}
	if (r < 0)
		return r;
	pthread_mutex_lock(&t->lock);
	struct backend_rec *b = mounts_find_rec(t, backend_id);
	if (b && b->m) {
		snprintf(c.health, sizeof c.health, "%s", mount_health_name(b->m->health));
		snprintf(c.health_message, sizeof c.health_message, "%s",
			b->m->health_message);
	}
	pthread_mutex_unlock(&t->lock);
	*ret = c;
	return 0;
}
