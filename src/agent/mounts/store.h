/* Persistence of backend mount records: <state_dir>/backends/<id>.json,
 * written atomically. These let a restarted agent adopt its mounts and
 * mount again by itself after a host restart. No secret is stored here. */
#pragma once

#include <limits.h>

#include "agent/agent.h"
#include "agent/smb/driver.h"
#include "agent/mounts/mounts.h"

struct stored_backend {
	struct smb_backend b;       /* spec owned */
	char mount_point[PATH_MAX]; /* "" when not mounted */
	char driver[8];
};

int store_backend_save(struct agent *a, const struct stored_backend *b);
int store_backend_remove(struct agent *a, const char *id);
/* Calls cb for each valid record (re-validated on load; invalid ones are
 * logged and skipped). cb takes ownership of b->spec. */
int store_backend_load_all(struct agent *a,
	void (*cb)(struct agent *a, struct stored_backend *b));
