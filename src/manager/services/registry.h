/* The live registry: backend id → instance, in memory, rebuilt from the
 * database on start. Instances (struct backend) are immutable once
 * published and reference-counted: a PATCH publishes a new instance under
 * the same id, and readers holding the old one finish with it safely.
 * Status and capacity are cached per id, written by the refresher. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "manager/backends/backend.h"

#define BACKEND_ID_MAX 64
#define BACKEND_NAME_MAX 64

struct backend {
	int refs; /* registry lock */
	char id[BACKEND_ID_MAX + 1];
	char name[BACKEND_NAME_MAX + 1];
	const struct backend_ops *ops;
	void *cfg; /* owned, ops->cfg_size bytes */
	bool has_password;
};

/* New instance with refs = 1; cfg is copied. */
int backend_new(const char *id, const char *name, const struct backend_ops *ops,
	const void *cfg, bool has_password, struct backend **ret);
/* NULL-safe. */
void backend_unref(struct backend *b);
static inline void
backend_unrefp(struct backend **b)
{
	backend_unref(*b);
}

struct backend_status {
	char status[24]; /* "unknown", "ok", or storage_status_of(code) */
	char code[48];   /* error code of the last failed check, or "" */
	char message[384];
	bool have_capacity;
	struct capacity cap;
	time_t checked_at;   /* monotonic seconds; 0: never */
	time_t checked_wall; /* the same check, seconds since the epoch */
	time_t since;        /* seconds since the epoch: status has held since */
};

/* One row of a snapshot: a reference plus copies. */
struct registry_item {
	struct backend *b; /* reference: release with registry_items_free */
	struct backend_status st;
	bool is_default;
};

struct registry;

int registry_new(struct registry **ret);
void registry_free(struct registry *reg);

/* Publish b under b->id (takes a new reference); replacing an instance
 * keeps its cached status. */
int registry_put(struct registry *reg, struct backend *b);
void registry_remove(struct registry *reg, const char *id);
/* New reference or NULL. */
struct backend *registry_get(struct registry *reg, const char *id);
/* Snapshot of every backend, sorted by name; caller frees. */
int registry_snapshot(struct registry *reg, struct registry_item **ret, size_t *ret_n);
/* Snapshot of one backend; -ENOENT. */
int registry_item_get(struct registry *reg, const char *id, struct registry_item *ret);
void registry_items_free(struct registry_item *items, size_t n);
void registry_item_release(struct registry_item *it);

void registry_set_status(struct registry *reg, const char *id,
	const struct backend_status *st);
void registry_set_default(struct registry *reg, const char *id);
/* Copy of the default id into buf ("" if none). */
void registry_default(struct registry *reg, char *buf, size_t sz);
size_t registry_count(struct registry *reg);
