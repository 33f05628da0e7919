/* Private to mounts/: the mount table's types. */
#pragma once

#include <pthread.h>

#include "common/secret.h"
#include "agent/mounts/mounts.h"

enum entry_state { ME_MOUNTING, ME_MOUNTED, ME_UNMOUNTING, ME_FAILED };

struct mount_entry {
	struct mount_entry *next;
	char key[2048];
	struct smb_mount_spec spec;
	/* The credentials file content the mount was made with (NULL for
	 * guest): a backend only shares this mount if its own file matches,
	 * so a wrong password never rides on someone else's mount. */
	struct secret *cred;
	char mount_point[PATH_MAX];
	char source[600];
	enum mount_driver driver;
	enum entry_state state;
	struct nq_error failure;  /* valid in ME_FAILED */
	enum mount_health health; /* last watchdog verdict (health.c) */
	char health_message[256];
	unsigned enotconn;  /* consecutive checks that saw ENOTCONN */
	long long retry_at; /* FAILED: watchdog's next mount attempt (s) */
	unsigned refs;      /* backends referencing it */
	unsigned pins;      /* in-flight operations */
	unsigned waiters;
};

struct backend_rec {
	struct backend_rec *next;
	struct smb_backend b;
	struct mount_entry *m; /* referenced mount, or NULL */
	bool lost; /* its mount was found dead at restore (mounts_backend_lost) */
};

struct mount_table {
	const struct mount_ops *ops; /* the driver of every mount */
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct mount_entry *mounts;
	struct backend_rec *backends;
	bool kernel_unavailable;
	/* The health watchdog (health.c). */
	pthread_t watcher;
	pthread_cond_t watch_wake; /* CLOCK_MONOTONIC */
	bool watching, watch_stop;
};

void mounts_entry_free(struct mount_entry *e);
void mounts_rec_free(struct backend_rec *b);
int mounts_make_key(const struct smb_mount_spec *s, const char *base, char *buf,
	size_t bufsz);
/* mountinfo still shows e's mount point with e's source (true when
 * mountinfo cannot be read). */
bool mounts_still_mounted(const struct mount_table *t, const struct mount_entry *e);
struct backend_rec *mounts_find_rec(struct mount_table *t, const char *id);
/* Find or create the mounted entry for (spec, base), mounting with the
 * credentials of backend cred_id; an entry that is MOUNTED but gone from
 * mountinfo is mounted again in place. Called and returns with the lock
 * held; on success the entry is pinned. */
int mounts_acquire_locked(struct agent *a, const char *cred_id,
	const struct smb_mount_spec *s, const char *base, const struct secret *cred_snap,
	struct mount_entry **ret, bool *ret_reused, struct nq_error *err);
/* Drop nothing, but unmount e when no pin or reference remains. Lock
 * held; released and retaken around the unmount. */
void mounts_release_locked(struct agent *a, struct mount_entry *e);
/* statvfs(mount_point) under a deadline keyed by mount_point. */
int mounts_probe(const char *mount_point, int timeout_ms);
/* The backend's mount point and UNC while it is pinned; -ENOENT. */
int mounts_names_locked(struct mount_table *t, const char *backend_id, char *mp,
	size_t mpsz, char *unc, size_t uncsz);
