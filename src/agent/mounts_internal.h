/* Private to mounts.c and mounts_restore.c: the mount table's types. */
#pragma once

#include <pthread.h>

#include "../common/secret.h"
#include "mounts.h"

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
	struct nq_error failure; /* valid in ME_FAILED */
	unsigned refs;           /* backends referencing it */
	unsigned pins;           /* in-flight operations */
	unsigned waiters;
};

struct backend_rec {
	struct backend_rec *next;
	char id[NQ_UUID_LEN + 1];
	struct smb_mount_spec spec;
	char subdir[NQ_SUBDIR_MAX + 1];
	char mount_base[PATH_MAX];
	struct mount_entry *m; /* referenced mount, or NULL */
};

struct mount_table {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct mount_entry *mounts;
	struct backend_rec *backends;
	bool kernel_unavailable;
};

void mounts_entry_free(struct mount_entry *e);
int mounts_make_key(const struct smb_mount_spec *s, const char *base, char *buf,
	size_t bufsz);
/* mountinfo still shows e's mount point with e's source (true when
 * mountinfo cannot be read). */
bool mounts_still_mounted(const struct mount_entry *e);
