/* Listing the mount table and rebuilding it when the agent starts. */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "agent/smb/credstore.h"
#include "agent/mounts/mountinfo.h"
#include "agent/mounts/internal.h"
#include "agent/mounts/store.h"
#include "agent/smb/bridge.h"
#include "agent/smb/mount.h"

json_t *
mounts_list_json(struct agent *a)
{
	struct mount_table *t = a->mounts;
	json_t *arr = json_array();

	pthread_mutex_lock(&t->lock);
	for (struct mount_entry *e = t->mounts; e && arr; e = e->next) {
		/* A referenced mount that could not be mounted again is listed
		 * too: health "dead" with the mount error as its message. */
		if (e->state != ME_MOUNTED && !(e->state == ME_FAILED && e->refs))
			continue;
		json_t *ids = json_array();
		for (struct backend_rec *b = t->backends; b; b = b->next)
			if (b->m == e)
				json_array_append_new(ids, json_string(b->b.id));
		json_array_append_new(arr,
			json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "mount_point",
				e->mount_point, "source", e->source, "driver",
				mount_driver_name(e->driver), "backends", ids, "health",
				mount_health_name(e->health), "health_message",
				e->health_message));
	}
	pthread_mutex_unlock(&t->lock);
	return arr;
}

/* A FUSE mount found at start is dead when a bounded statvfs answers
 * ENOTCONN and no bridge process serves it. A hung one is adopted (the
 * watchdog reports it). */
static bool
found_dead(struct agent *a, const char *mount_point, bool fuse)
{
	int timeout_ms = (int)(a->cfg.probe_timeout < 5 ? a->cfg.probe_timeout : 5) * 1000;

	return fuse && mounts_probe(mount_point, timeout_ms) == -ENOTCONN &&
	       smb_bridge_alive(mount_point) == 0;
}

/* Never adopt a dead mount: detach it (mounted again on first use). */
static bool
detach_if_dead(struct agent *a, const struct mountinfo_entry *m, const char *id)
{
	bool fuse = !strcmp(m->fstype, "fuse.nqrust-smbfs");

	if (!found_dead(a, m->mount_point, fuse))
		return false;
	log_warn("found a dead mount, detaching it; it is mounted again on first use "
		 "backend_id=%s mount_point=%s",
		id, m->mount_point);
	int r = a->mounts->ops->unmount(a, m->mount_point);
	if (r < 0)
		log_warn("cannot detach the dead mount mount_point=%s err=%s",
			m->mount_point, strerror(-r));
	return true;
}

/* Restore one backend record: adopt its mount when mountinfo still shows
 * it (same mount point, same source, one of our fs types) and it is
 * alive. A backend whose recorded mount is gone or dead is marked lost:
 * VMs adopted on it lost their disks (mounts_backend_lost). */
static void
restore_one(struct agent *a, struct stored_backend *sb)
{
	struct mount_table *t = a->mounts;
	struct backend_rec *b = calloc(1, sizeof *b);
	struct mountinfo_entry *mi = NULL;
	size_t n = 0;
	char key[2048], unc[600];

	if (!b) {
		smb_mount_spec_release(&sb->b.spec);
		return;
	}
	b->b = sb->b; /* takes ownership of the spec */
	memset(&sb->b.spec, 0, sizeof sb->b.spec);
	b->next = t->backends;
	t->backends = b;

	if (!sb->mount_point[0] ||
		mounts_make_key(&b->b.spec, b->b.mount_base, key, sizeof key) < 0)
		return;
	smb_unc(&b->b.spec, unc, sizeof unc);
	_cleanup_secret_ struct secret *cred = NULL;
	if (b->b.spec.username[0])
		credstore_read(a, b->b.id, &cred);
	for (struct mount_entry *e = t->mounts; e; e = e->next)
		if (!strcmp(e->key, key) && !strcmp(e->mount_point, sb->mount_point)) {
			e->refs++;
			b->m = e;
			return;
		}
	if (mountinfo_read(&mi, &n) < 0)
		return;
	const struct mountinfo_entry *m = mountinfo_find(mi, n, sb->mount_point);
	if (m && mountinfo_is_smb(m) && !strcmp(m->source, unc) &&
		!detach_if_dead(a, m, b->b.id)) {
		struct mount_entry *e = calloc(1, sizeof *e);
		if (e && smb_mount_spec_copy(&b->b.spec, &e->spec) >= 0 &&
			(!cred || secret_new(cred->buf, cred->len, &e->cred) >= 0)) {
			snprintf(e->key, sizeof e->key, "%s", key);
			snprintf(e->mount_point, sizeof e->mount_point, "%s",
				sb->mount_point);
			snprintf(e->source, sizeof e->source, "%s", unc);
			e->driver = !strcmp(m->fstype, "fuse.nqrust-smbfs")
					    ? DRIVER_FUSE
					    : DRIVER_KERNEL;
			e->state = ME_MOUNTED;
			e->refs = 1;
			e->next = t->mounts;
			t->mounts = e;
			b->m = e;
			log_info("adopted existing mount source=%s mount_point=%s driver=%s",
				unc, e->mount_point, mount_driver_name(e->driver));
		} else if (e) {
			mounts_entry_free(e);
		}
	} else {
		b->lost = true;
		log_info("share of backend not mounted; will mount on first use "
			 "backend_id=%s source=%s",
			b->b.id, unc);
	}
	mountinfo_free(mi, n);
}

int
mounts_restore(struct agent *a)
{
	int r;

	pthread_mutex_lock(&a->mounts->lock);
	r = store_backend_load_all(a, restore_one);
	pthread_mutex_unlock(&a->mounts->lock);
	return r;
}
