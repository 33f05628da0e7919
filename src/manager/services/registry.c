/* See registry.h. A small array under one mutex: the registry holds tens
 * of backends, not thousands. */
#include "manager/services/registry.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"

#define REGISTRY_MAX 4096

struct entry {
	struct backend *b;
	struct backend_status st;
};

struct registry {
	pthread_mutex_t lock;
	struct entry *v;
	size_t n, cap;
	char default_id[BACKEND_ID_MAX + 1];
};

static pthread_mutex_t refs_lock = PTHREAD_MUTEX_INITIALIZER;

int
backend_new(const char *id, const char *name, const struct backend_ops *ops,
	const void *cfg, bool has_password, struct backend **ret)
{
	struct backend *b;

	if (strlen(id) > BACKEND_ID_MAX || strlen(name) > BACKEND_NAME_MAX)
		return -ENAMETOOLONG;
	b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->cfg = malloc(ops->cfg_size);
	if (!b->cfg) {
		free(b);
		return -ENOMEM;
	}
	memcpy(b->cfg, cfg, ops->cfg_size);
	b->refs = 1;
	snprintf(b->id, sizeof b->id, "%s", id);
	snprintf(b->name, sizeof b->name, "%s", name);
	b->ops = ops;
	b->has_password = has_password;
	*ret = b;
	return 0;
}

static struct backend *
backend_ref(struct backend *b)
{
	pthread_mutex_lock(&refs_lock);
	b->refs++;
	pthread_mutex_unlock(&refs_lock);
	return b;
}

void
backend_unref(struct backend *b)
{
	int left;

	if (!b)
		return;
	pthread_mutex_lock(&refs_lock);
	left = --b->refs;
	pthread_mutex_unlock(&refs_lock);
	if (left > 0)
		return;
	free(b->cfg);
	free(b);
}

int
registry_new(struct registry **ret)
{
	struct registry *reg = calloc(1, sizeof *reg);

	if (!reg)
		return -ENOMEM;
	pthread_mutex_init(&reg->lock, NULL);
	*ret = reg;
	return 0;
}

void
registry_free(struct registry *reg)
{
	if (!reg)
		return;
	for (size_t i = 0; i < reg->n; i++)
		backend_unref(reg->v[i].b);
	free(reg->v);
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

static struct entry *
find(struct registry *reg, const char *id)
{
	for (size_t i = 0; i < reg->n; i++)
		if (strcmp(reg->v[i].b->id, id) == 0)
			return &reg->v[i];
	return NULL;
}

int
registry_put(struct registry *reg, struct backend *b)
{
	struct entry *e;
	int r = 0;

	pthread_mutex_lock(&reg->lock);
	e = find(reg, b->id);
	if (e) {
		backend_unref(e->b);
		e->b = backend_ref(b);
		goto out;
	}
	if (reg->n >= REGISTRY_MAX) {
		r = -ENOSPC;
		goto out;
	}
	if (reg->n == reg->cap) {
		size_t ncap = reg->cap ? reg->cap * 2 : 16;
		struct entry *nv = realloc(reg->v, ncap * sizeof *nv);
		if (!nv) {
			r = -ENOMEM;
			goto out;
		}
		reg->v = nv;
		reg->cap = ncap;
	}
	e = &reg->v[reg->n++];
	memset(e, 0, sizeof *e);
	e->b = backend_ref(b);
	snprintf(e->st.status, sizeof e->st.status, "unknown");
out:
	pthread_mutex_unlock(&reg->lock);
	return r;
}

void
registry_remove(struct registry *reg, const char *id)
{
	struct entry *e;

	pthread_mutex_lock(&reg->lock);
	e = find(reg, id);
	if (e) {
		backend_unref(e->b);
		*e = reg->v[--reg->n];
	}
	if (strcmp(reg->default_id, id) == 0)
		reg->default_id[0] = '\0';
	pthread_mutex_unlock(&reg->lock);
}

struct backend *
registry_get(struct registry *reg, const char *id)
{
	struct backend *b = NULL;
	struct entry *e;

	pthread_mutex_lock(&reg->lock);
	e = find(reg, id);
	if (e)
		b = backend_ref(e->b);
	pthread_mutex_unlock(&reg->lock);
	return b;
}

static int
cmp_items(const void *a, const void *b)
{
	const struct registry_item *x = a, *y = b;

	return strcmp(x->b->name, y->b->name);
}

int
registry_snapshot(struct registry *reg, struct registry_item **ret, size_t *ret_n)
{
	struct registry_item *items;
	size_t n;

	pthread_mutex_lock(&reg->lock);
	n = reg->n;
	items = calloc(n ? n : 1, sizeof *items);
	if (!items) {
		pthread_mutex_unlock(&reg->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		items[i].b = backend_ref(reg->v[i].b);
		items[i].st = reg->v[i].st;
		items[i].is_default = strcmp(reg->default_id, reg->v[i].b->id) == 0;
	}
	pthread_mutex_unlock(&reg->lock);
	qsort(items, n, sizeof *items, cmp_items);
	*ret = items;
	*ret_n = n;
	return 0;
}

int
registry_item_get(struct registry *reg, const char *id, struct registry_item *ret)
{
	struct entry *e;
	int r = -ENOENT;

	pthread_mutex_lock(&reg->lock);
	e = find(reg, id);
	if (e) {
		ret->b = backend_ref(e->b);
		ret->st = e->st;
		ret->is_default = strcmp(reg->default_id, id) == 0;
		r = 0;
	}
	pthread_mutex_unlock(&reg->lock);
	return r;
}

void
registry_item_release(struct registry_item *it)
{
	if (!it)
		return;
	backend_unref(it->b);
	it->b = NULL;
}

void
registry_items_free(struct registry_item *items, size_t n)
{
	if (!items)
		return;
	for (size_t i = 0; i < n; i++)
		backend_unref(items[i].b);
	free(items);
}

void
registry_set_status(struct registry *reg, const char *id, const struct backend_status *st)
{
	struct entry *e;

	pthread_mutex_lock(&reg->lock);
	e = find(reg, id);
	if (e)
		e->st = *st;
	pthread_mutex_unlock(&reg->lock);
}

void
registry_set_default(struct registry *reg, const char *id)
{
	pthread_mutex_lock(&reg->lock);
	snprintf(reg->default_id, sizeof reg->default_id, "%s", id);
	pthread_mutex_unlock(&reg->lock);
}

void
registry_default(struct registry *reg, char *buf, size_t sz)
{
	pthread_mutex_lock(&reg->lock);
	snprintf(buf, sz, "%s", reg->default_id);
	pthread_mutex_unlock(&reg->lock);
}

size_t
registry_count(struct registry *reg)
{
	size_t n;

	pthread_mutex_lock(&reg->lock);
	n = reg->n;
	pthread_mutex_unlock(&reg->lock);
	return n;
}
