/* The replay journal: writes the server acknowledged but has not yet
 * flushed, kept until a flush of their file succeeds.
 *
 * Why: an acknowledged write sits in the server's cache until a flush. If
 * the connection breaks and the server lost that cache (a NAS power cut,
 * a crash), a flush sent on the new connection would succeed and the data
 * would be gone: the guest would have been told a flush covered it. The
 * kernel NFS client keeps such "unstable" writes for the same reason and
 * sends them again when the server's write verifier changes. SMB2 has no
 * verifier, so after every reconnect the bridge replays the journal, in
 * order, before anything else reaches the server: for a server that lost
 * nothing, that rewrites the same bytes at the same offsets.
 *
 * Bounded: when a write would take the journal past its cap, every file
 * in it is flushed first and the journal emptied. Everything here runs
 * under fs->lock.
 *
 * Bounded in time too, with io_deadline= (deadline.c): an entry keeps the
 * send cutoff of the request that wrote it, and one past it is dropped,
 * never replayed; its file is marked lost and its next fsync fails with
 * EIO, so the loss is reported, not silent. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/ops_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

struct jentry {
	struct jentry *next;
	char *url;         /* owned */
	int64_t cutoff_ms; /* the writing request's send cutoff, 0 = none */
	off_t off;         /* write offset, or the new size of a truncate */
	size_t len;
	bool truncate;
	bool dropped; /* expired during a replay; unlinked after it */
	uint64_t seq; /* journal.seq when added */
	unsigned char data[];
};

struct smbfs_lost {
	struct smbfs_lost *next;
	char url[];
};

static void
entry_free(struct jentry *e)
{
	free(e->url);
	free(e);
}

static void
unlink_if(struct smbfs *fs, bool (*match)(const struct jentry *, const void *),
	const void *arg)
{
	struct smbfs_journal *j = &fs->journal;
	struct jentry **pp = &j->head, *e;

	while ((e = *pp) != NULL) {
		if (match(e, arg)) {
			*pp = e->next;
			j->bytes -= e->len;
			entry_free(e);
		} else {
			pp = &e->next;
		}
	}
	j->tail = pp; /* the last next pointer: where an append goes */
}

static bool
match_url(const struct jentry *e, const void *url)
{
	return strcmp(e->url, url) == 0;
}

struct upto {
	const char *url;
	uint64_t seq;
};

static bool
match_upto(const struct jentry *e, const void *arg)
{
	const struct upto *u = arg;

	return e->seq <= u->seq && strcmp(e->url, u->url) == 0;
}

static bool
match_all(const struct jentry *e, const void *unused)
{
	(void)e;
	(void)unused;
	return true;
}

static struct smbfs_lost **lost_find(struct smbfs *fs, const char *url);

void
journal_clear_lost(struct smbfs *fs, const char *url)
{
	struct smbfs_lost **pp = lost_find(fs, url), *l = *pp;

	if (l) {
		*pp = l->next;
		free(l);
	}
}

void
journal_forget(struct smbfs *fs, const char *url)
{
	unlink_if(fs, match_url, url);
	/* Removed, replaced or flushed: what it lost no longer matters to
	 * anyone (a flush reported it already, journal_take_lost). */
	journal_clear_lost(fs, url);
}

char *
journal_oldest_url(struct smbfs *fs)
{
	return fs->journal.head ? strdup(fs->journal.head->url) : NULL;
}

void
journal_forget_upto(struct smbfs *fs, const char *url, uint64_t seq)
{
	struct upto u = { url, seq };

	unlink_if(fs, match_upto, &u);
}

static bool
match_expired(const struct jentry *e, const void *now)
{
	return smbfs_cutoff_passed(e->cutoff_ms, *(const int64_t *)now);
}

static struct smbfs_lost **
lost_find(struct smbfs *fs, const char *url)
{
	struct smbfs_lost **pp = &fs->journal.lost;

	while (*pp && strcmp((*pp)->url, url) != 0)
		pp = &(*pp)->next;
	return pp;
}

/* Mark url lost; without memory for the mark, the next fsync of any file
 * fails (the safe side: a spurious EIO rather than a silent loss). */
static void
lost_add(struct smbfs *fs, const char *url)
{
	size_t n = strlen(url) + 1;
	struct smbfs_lost *l;

	if (*lost_find(fs, url))
		return;
	l = malloc(sizeof *l + n);
	if (!l) {
		fs->journal.all_lost = true;
		return;
	}
	memcpy(l->url, url, n);
	l->next = fs->journal.lost;
	fs->journal.lost = l;
}

static bool
match_dropped(const struct jentry *e, const void *unused)
{
	(void)unused;
	return e->dropped;
}

void
journal_expire(struct smbfs *fs, int64_t now_ms)
{
	for (struct jentry *e = fs->journal.head; e; e = e->next)
		if (match_expired(e, &now_ms))
			lost_add(fs, e->url);
	unlink_if(fs, match_expired, &now_ms);
}

/* Entries that expired while the replay ran: skipped by it, dropped. */
static void
drop_entry(struct smbfs *fs, struct jentry *e)
{
	lost_add(fs, e->url);
	e->dropped = true;
}

bool
journal_take_lost(struct smbfs *fs, const char *url)
{
	struct smbfs_lost **pp = lost_find(fs, url), *l;

	if (fs->journal.all_lost) {
		fs->journal.all_lost = false;
		return true;
	}
	if (!*pp)
		return false;
	l = *pp;
	*pp = l->next;
	free(l);
	return true;
}

static void
lost_rename(struct smbfs *fs, const char *from, const char *to)
{
	struct smbfs_lost **pp = lost_find(fs, from);

	if (*pp) {
		struct smbfs_lost *l = *pp;

		*pp = l->next;
		free(l);
		lost_add(fs, to);
	}
}

void
journal_release(struct smbfs *fs)
{
	unlink_if(fs, match_all, NULL);
	while (fs->journal.lost) {
		struct smbfs_lost *l = fs->journal.lost;

		fs->journal.lost = l->next;
		free(l);
	}
}

void
journal_rename(struct smbfs *fs, const char *from, const char *to)
{
	journal_forget(fs, to); /* replaced: its old data is gone anyway */
	lost_rename(fs, from, to);
	journal_rename_dirty(fs, from, to);
	for (struct jentry *e = fs->journal.head; e; e = e->next) {
		char *n;

		if (strcmp(e->url, from) != 0)
			continue;
		n = strdup(to);
		if (!n)
			continue; /* stays under the old name: replay skips it */
		free(e->url);
		e->url = n;
	}
}

/* Open url read-write and flush it. */
static int
flush_url(struct smbfs *fs, const char *url)
{
	SMBCFILE *f = smbc_getFunctionOpen(fs->ctx)(fs->ctx, url, O_RDWR, 0);
	int r;

	if (!f)
		return errno == ENOENT ? 0 : smb_err();
	r = smbfs_flush_file(f);
	smbc_getFunctionClose(fs->ctx)(fs->ctx, f);
	return r;
}

/* Flush every file in the journal and empty it. */
static int
make_room(struct smbfs *fs)
{
	struct smbfs_journal *j = &fs->journal;
	int r;

	while (j->head) {
		char *url = strdup(j->head->url);

		if (!url)
			return -ENOMEM;
		r = flush_url(fs, url);
		if (r == 0)
			journal_forget(fs, url);
		free(url);
		if (r < 0)
			return r;
	}
	return 0;
}

static int
add(struct smbfs *fs, const char *url, off_t off, const void *buf, size_t len,
	bool truncate)
{
	struct smbfs_journal *j = &fs->journal;
	struct jentry *e;
	int r;

	if (fs->nostrictsync || j->cap == 0)
		return 0;
	if (j->bytes + len > j->cap && (r = make_room(fs)) < 0)
		return r;
	if (len > j->cap) /* bigger than the journal: flush it now */
		return 1;
	e = malloc(sizeof *e + len);
	if (!e || !(e->url = strdup(url))) {
		free(e);
		return -ENOMEM;
	}
	e->next = NULL;
	e->cutoff_ms = fs->cutoff_ms;
	e->off = off;
	e->len = len;
	e->truncate = truncate;
	e->dropped = false;
	e->seq = ++j->seq;
	if (len)
		memcpy(e->data, buf, len);
	*j->tail = e;
	j->tail = &e->next;
	j->bytes += len;
	return 0;
}

int
journal_add_write(struct smbfs *fs, const char *url, const void *buf, size_t len, off_t off)
{
	int r = add(fs, url, off, buf, len, false);

	return r == 1 ? flush_url(fs, url) : r;
}

int
journal_add_truncate(struct smbfs *fs, const char *url, off_t size)
{
	return add(fs, url, size, NULL, 0, true);
}

static int
replay_one(struct smbfs *fs, SMBCFILE *f, const struct jentry *e)
{
	size_t done = 0;

	if (e->truncate)
		return smbc_getFunctionFtruncate(fs->ctx)(fs->ctx, f, e->off) < 0
			       ? smb_err()
			       : 0;
	if (smbc_getFunctionLseek(fs->ctx)(fs->ctx, f, e->off, SEEK_SET) < 0)
		return smb_err();
	while (done < e->len) {
		ssize_t n = smbc_getFunctionWrite(fs->ctx)(fs->ctx, f, e->data + done,
			e->len - done);

		if (n <= 0)
			return n < 0 ? smb_err() : -EIO;
		done += (size_t)n;
	}
	return 0;
}

int
journal_replay(struct smbfs *fs)
{
	struct smbfs_journal *j = &fs->journal;
	SMBCFILE *f = NULL;
	const char *open_url = NULL;
	int r = 0;

	if (j->gen == fs->gen)
		return 0;
	journal_expire(fs, smbfs_now_ms());
	for (struct jentry *e = j->head; e && r == 0; e = e->next) {
		if (!open_url || strcmp(open_url, e->url) != 0) {
			if (f)
				smbc_getFunctionClose(fs->ctx)(fs->ctx, f);
			open_url = e->url;
			f = smbc_getFunctionOpen(fs->ctx)(fs->ctx, e->url, O_RDWR, 0);
			if (!f && errno == ENOENT)
				continue; /* removed since: nothing to restore */
			if (!f)
				return smb_err();
		}
		/* Checked after the open, which may have waited for a
		 * connection: an expired entry is never sent again. */
		if (smbfs_cutoff_passed(e->cutoff_ms, smbfs_now_ms()))
			drop_entry(fs, e);
		else if (f)
			r = replay_one(fs, f, e);
	}
	if (f)
		smbc_getFunctionClose(fs->ctx)(fs->ctx, f);
	unlink_if(fs, match_dropped, NULL);
	if (r == 0)
		j->gen = fs->gen;
	return r;
}
