/* Which connections changed a file since its last flush (with conns=N,
 * pool.h): an fsync flushes the file on each of them, so that no server
 * that keeps per-handle or per-session caches can leave acknowledged
 * writes unflushed. Everything here runs under fs->lock. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/ops_internal.h"

#include <stdlib.h>
#include <string.h>

struct smbfs_dirty {
	struct smbfs_dirty *next;
	uint32_t mask;
	char url[];
};

static struct smbfs_dirty **
dirty_find(struct smbfs *fs, const char *url)
{
	struct smbfs_dirty **pp = &fs->journal.dirty;

	while (*pp && strcmp((*pp)->url, url) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* Without memory for the mark, every file's next fsync flushes on those
 * connections (the safe side). */
void
journal_mark_dirty(struct smbfs *fs, const char *url, uint32_t mask)
{
	struct smbfs_dirty **pp, *d;
	size_t n;

	if (!fs->pool || !mask)
		return;
	pp = dirty_find(fs, url);
	if (*pp) {
		(*pp)->mask |= mask;
		return;
	}
	n = strlen(url) + 1;
	d = malloc(sizeof *d + n);
	if (!d) {
		fs->journal.dirty_all |= mask;
		return;
	}
	memcpy(d->url, url, n);
	d->mask = mask;
	d->next = fs->journal.dirty;
	fs->journal.dirty = d;
}

uint32_t
journal_take_dirty(struct smbfs *fs, const char *url)
{
	struct smbfs_dirty **pp = dirty_find(fs, url), *d = *pp;
	uint32_t mask = fs->journal.dirty_all;

	fs->journal.dirty_all = 0;
	if (d) {
		mask |= d->mask;
		*pp = d->next;
		free(d);
	}
	return mask;
}

void
journal_drop_dirty(struct smbfs *fs, const char *url)
{
	struct smbfs_dirty **pp = dirty_find(fs, url), *d = *pp;

	if (d) {
		*pp = d->next;
		free(d);
	}
}

void
journal_rename_dirty(struct smbfs *fs, const char *from, const char *to)
{
	struct smbfs_dirty **pp;
	uint32_t mask;

	if (!fs->pool)
		return;
	journal_drop_dirty(fs, to);
	pp = dirty_find(fs, from);
	if (!*pp)
		return;
	mask = (*pp)->mask;
	journal_drop_dirty(fs, from);
	journal_mark_dirty(fs, to, mask);
}

void
journal_release_dirty(struct smbfs *fs)
{
	while (fs->journal.dirty) {
		struct smbfs_dirty *d = fs->journal.dirty;

		fs->journal.dirty = d->next;
		free(d);
	}
	fs->journal.dirty_all = 0;
}
