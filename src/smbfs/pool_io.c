/* nqrust-smbfs connection pool: the FUSE operations that go to workers
 * (pool.h). Reads and writes run on any idle worker (the one that served
 * the open file last when it is idle: its handle is open); the main
 * process journals what they acknowledged, remembers which workers wrote
 * to which file, and keeps overlapping writes in their order of arrival. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/pool_internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

/* One request for a worker's slot. */
struct req {
	int op;
	uint64_t hid;
	const char *url;
	int flags;
	bool sync;
	off_t off;
	size_t size;
	int64_t cutoff;
	const void *wbuf; /* W_WRITE: size bytes */
};

static int
prep(struct smbfs_wslot *s, const struct req *q)
{
	size_t n = strlen(q->url) + 1;

	if (n > sizeof s->url || q->size > sizeof s->data)
		return -ENAMETOOLONG;
	s->op = q->op;
	s->hid = q->hid;
	s->flags = q->flags;
	s->sync = q->sync;
	s->off = q->off;
	s->size = q->size;
	s->cutoff_ms = q->cutoff;
	s->r = 0;
	s->done = 0;
	memcpy(s->url, q->url, n);
	if (q->wbuf)
		memcpy(s->data, q->wbuf, q->size);
	return 0;
}

/* Run q on a worker (only >= 0: on that one, -ESRCH when it died). The
 * index of the worker, still held (read its answer, then release), or
 * -errno. A request found undeliverable goes to another worker. */
static int
run(struct smbfs_pool *p, int prefer, int only, const struct req *q)
{
	for (unsigned tries = 0; tries <= p->n; tries++) {
		int i = smbfs_pool_acquire(p, prefer, only), r;

		if (i < 0)
			return i;
		r = prep(p->w[i].slot, q);
		if (r == 0)
			r = smbfs_pool_roundtrip(p, i);
		if (r == 0)
			return i;
		smbfs_pool_release(p, i);
		if (r != -EPIPE)
			return r;
		if (only >= 0)
			return -ESRCH;
		prefer = -1;
	}
	return -EIO;
}

static void
note_worker(struct smbfs_fh *h, int i)
{
	__atomic_or_fetch(&h->wmask, 1u << i, __ATOMIC_RELAXED);
	__atomic_store_n(&h->last_w, i, __ATOMIC_RELAXED);
}

/* Our own connection takes a request itself when it serves no other
 * read or write: a lone request (queue depth 1) then costs no handoff to
 * a worker, and deeper queues spill over to the workers. */
static bool
main_claim(struct smbfs_pool *p)
{
	return __atomic_exchange_n(&p->main_busy, 1, __ATOMIC_ACQUIRE) == 0;
}

static void
main_release(struct smbfs_pool *p)
{
	__atomic_store_n(&p->main_busy, 0, __ATOMIC_RELEASE);
}

static int
read_chunk(struct smbfs *fs, struct fuse_file_info *fi, char *buf, size_t size, off_t off,
	size_t *ret_done)
{
	struct smbfs_fh *h = fh_get(fi);
	struct req q = { .op = W_READ,
		.hid = h->id,
		.url = h->url,
		.flags = h->flags,
		.off = off,
		.size = size };
	struct smbfs_wslot *s;
	int i, r;

	if (main_claim(fs->pool)) {
		struct io_args a = { .fi = fi, .rbuf = buf, .size = size, .off = off };

		r = smbfs_call(fs, smbfs_read_attempt, &a);
		main_release(fs->pool);
		*ret_done = a.done;
		return r < 0 ? r : 0;
	}
	i = run(fs->pool, __atomic_load_n(&h->last_w, __ATOMIC_RELAXED), -1, &q);
	if (i < 0)
		return i;
	s = fs->pool->w[i].slot;
	r = s->r;
	*ret_done = s->done <= size ? s->done : size;
	memcpy(buf, s->data, *ret_done);
	smbfs_pool_release(fs->pool, i);
	note_worker(h, i);
	return r;
}

int
smbfs_pool_read(struct smbfs *fs, struct fuse_file_info *fi, char *buf, size_t size,
	off_t off)
{
	struct smbfs_fh *h = fh_get(fi);
	size_t total = 0;

	if (!h)
		return -EBADF;
	while (total < size) {
		size_t chunk = size - total < SMBFS_IO_SIZE ? size - total : SMBFS_IO_SIZE;
		size_t done = 0;
		int r = read_chunk(fs, fi, buf + total, chunk, off + (off_t)total, &done);

		total += done;
		if (r < 0)
			return total ? (int)total : r;
		if (done < chunk)
			break; /* end of file */
	}
	return (int)total;
}

static int
noop_attempt(struct smbfs *fs, void *arg)
{
	(void)fs;
	(void)arg;
	return 0;
}

/* A worker reconnected or died since the journal was last replayed:
 * replay it now, before a write goes out (retry.c takes the gate
 * exclusively for it). */
static int
replay_pending(struct smbfs *fs)
{
	if (__atomic_load_n(&fs->journal.gen, __ATOMIC_RELAXED) ==
		__atomic_load_n(&fs->gen, __ATOMIC_RELAXED))
		return 0;
	return smbfs_call(fs, noop_attempt, NULL);
}

static bool
overlaps(const struct smbfs_range *a, const struct smbfs_range *b)
{
	return a->off < b->off + (off_t)b->len && b->off < a->off + (off_t)a->len &&
	       strcmp(a->url, b->url) == 0;
}

/* Queue rg behind the writes that arrived before it, and wait until none
 * of those that overlap it is still queued or in flight. */
static void
range_enter(struct smbfs_pool *p, struct smbfs_range *rg)
{
	struct smbfs_range **pp;
	bool wait = true;

	pthread_mutex_lock(&p->mu);
	for (pp = &p->ranges; *pp; pp = &(*pp)->next)
		;
	rg->next = NULL;
	*pp = rg;
	while (wait) {
		wait = false;
		for (struct smbfs_range *a = p->ranges; a != rg && !wait; a = a->next)
			wait = overlaps(a, rg);
		if (wait)
			pthread_cond_wait(&p->cv, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
}

static void
range_leave(struct smbfs_pool *p, struct smbfs_range *rg)
{
	struct smbfs_range **pp;

	pthread_mutex_lock(&p->mu);
	for (pp = &p->ranges; *pp && *pp != rg; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = rg->next;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void
kick_flusher(struct smbfs_pool *p)
{
	pthread_mutex_lock(&p->mu);
	p->flush_wanted = true;
	pthread_cond_signal(&p->fcv);
	pthread_mutex_unlock(&p->mu);
}

/* Our own connection's write (main_claim): write_attempt journals it. */
static int
write_main(struct smbfs *fs, struct fuse_file_info *fi, const char *buf, size_t size,
	off_t off, int64_t cutoff, size_t *ret_done)
{
	struct io_args a = { .fi = fi, .wbuf = buf, .size = size, .off = off };
	bool kick;
	int r;

	r = smbfs_call_cutoff(fs, smbfs_write_attempt, &a, cutoff);
	main_release(fs->pool);
	*ret_done = a.done;
	pthread_mutex_lock(&fs->lock);
	if (a.done)
		journal_mark_dirty(fs, fh_get(fi)->url, SMBFS_MAIN_BIT);
	kick = fs->journal.cap && fs->journal.bytes > fs->journal.cap / 4 * 3;
	pthread_mutex_unlock(&fs->lock);
	if (kick)
		kick_flusher(fs->pool);
	return r;
}

/* Journal what worker i acknowledged and note that it has to flush the
 * file; the journal entry keeps the request's cutoff. */
static int
record_write(struct smbfs *fs, struct smbfs_fh *h, int i, const char *buf, size_t done,
	off_t off, int64_t cutoff)
{
	bool kick;
	int r;

	pthread_mutex_lock(&fs->lock);
	fs->cutoff_ms = cutoff;
	r = journal_add_write(fs, h->url, buf, done, off);
	fs->cutoff_ms = 0;
	journal_mark_dirty(fs, h->url, 1u << i);
	kick = fs->journal.cap && fs->journal.bytes > fs->journal.cap / 4 * 3;
	pthread_mutex_unlock(&fs->lock);
	if (kick)
		kick_flusher(fs->pool);
	return r < 0 ? -EIO : 0;
}

static int
write_chunk(struct smbfs *fs, struct fuse_file_info *fi, const char *buf, size_t size,
	off_t off, int64_t cutoff, size_t *ret_done)
{
	struct smbfs_fh *h = fh_get(fi);
	struct req q = { .op = W_WRITE,
		.hid = h->id,
		.url = h->url,
		.flags = h->flags,
		.sync = h->sync,
		.off = off,
		.size = size,
		.cutoff = cutoff,
		.wbuf = buf };
	struct smbfs_range rg = { .url = h->url, .off = off, .len = size };
	int i, r;

	r = replay_pending(fs);
	if (r < 0)
		return r;
	range_enter(fs->pool, &rg);
	if (main_claim(fs->pool)) {
		r = write_main(fs, fi, buf, size, off, cutoff, ret_done);
		range_leave(fs->pool, &rg);
		return r;
	}
	pthread_rwlock_rdlock(fs->gate);
	i = run(fs->pool, __atomic_load_n(&h->last_w, __ATOMIC_RELAXED), -1, &q);
	if (i >= 0) {
		struct smbfs_wslot *s = fs->pool->w[i].slot;
		int jr = 0;

		r = s->r;
		*ret_done = s->done <= size ? s->done : size;
		smbfs_pool_release(fs->pool, i);
		note_worker(h, i);
		if (*ret_done)
			jr = record_write(fs, h, i, buf, *ret_done, off, cutoff);
		if (jr < 0)
			r = jr;
	} else {
		r = i;
	}
	pthread_rwlock_unlock(fs->gate);
	range_leave(fs->pool, &rg);
	return r;
}

int
smbfs_pool_write(struct smbfs *fs, struct fuse_file_info *fi, const char *buf, size_t size,
	off_t off)
{
	struct smbfs_fh *h = fh_get(fi);
	int64_t cutoff = smbfs_send_cutoff_ms(smbfs_now_ms(), fs->io_deadline_s);
	size_t total = 0;

	if (!h)
		return -EBADF;
	while (total < size) {
		size_t chunk = size - total < SMBFS_IO_SIZE ? size - total : SMBFS_IO_SIZE;
		size_t done = 0;
		int r = write_chunk(fs, fi, buf + total, chunk, off + (off_t)total, cutoff,
			&done);

		total += done;
		if (r < 0)
			return total ? (int)total : r;
		if (done < chunk)
			return total ? (int)total : -EIO;
	}
	return (int)total;
}

/* Flush url on worker i (-1: any); on another when i died meanwhile (the
 * new one opens the file: a server flush covers what any handle wrote). */
static int
flush_on(struct smbfs *fs, const struct smbfs_fh *h, const char *url, int i, int64_t cutoff)
{
	struct req q = { .op = W_FLUSH, .hid = h ? h->id : 0, .url = url, .cutoff = cutoff };
	int k, r;

	k = run(fs->pool, -1, i, &q);
	if (k == -ESRCH && i >= 0)
		k = run(fs->pool, -1, -1, &q);
	if (k < 0)
		return k;
	r = fs->pool->w[k].slot->r;
	smbfs_pool_release(fs->pool, k);
	return r;
}

static int
flush_workers(struct smbfs *fs, const struct smbfs_fh *h, const char *url, uint32_t mask)
{
	int64_t cutoff = smbfs_send_cutoff_ms(smbfs_now_ms(), fs->io_deadline_s);
	int r = 0;

	for (unsigned i = 0; i < fs->pool->n && r == 0; i++)
		if (mask & (1u << i))
			r = flush_on(fs, h, url, (int)i, cutoff);
	return r;
}

int
smbfs_pool_fsync(struct smbfs *fs, const char *path, struct fuse_file_info *fi)
{
	struct smbfs_fh *h = fi ? fh_get(fi) : NULL;
	char *url = smbfs_url(fs, path);
	uint32_t mask = 0;
	uint64_t seq;
	bool lost;
	int r;

	if (!url)
		return -errno;
	r = replay_pending(fs);
	pthread_mutex_lock(&fs->lock);
	lost = journal_take_lost(fs, url);
	if (!lost && r == 0)
		mask = journal_take_dirty(fs, url);
	seq = fs->journal.seq;
	pthread_mutex_unlock(&fs->lock);
	if (lost || r < 0) {
		free(url);
		return lost ? -EIO : r;
	}
	r = flush_workers(fs, h, url, mask & ~SMBFS_MAIN_BIT);
	pthread_mutex_lock(&fs->lock);
	if (r < 0)
		journal_mark_dirty(fs, url, mask);
	else if (journal_take_lost(fs, url))
		r = -EIO; /* dropped past io_deadline while we flushed */
	else if (mask & ~SMBFS_MAIN_BIT)
		journal_forget_upto(fs, url, seq);
	pthread_mutex_unlock(&fs->lock);
	free(url);
	if (r < 0)
		return r;
	return mask == 0 || (mask & SMBFS_MAIN_BIT) ? 1 : 0;
}

/* Flush the journal's oldest file on the workers that wrote to it (on
 * any one when none is recorded) and drop its entries up to then. */
static int
flush_oldest(struct smbfs *fs)
{
	char *url;
	uint32_t mask;
	uint64_t seq;
	int r;

	pthread_mutex_lock(&fs->lock);
	url = fs->journal.bytes > fs->journal.cap / 2 ? journal_oldest_url(fs) : NULL;
	mask = url ? journal_take_dirty(fs, url) : 0;
	seq = fs->journal.seq;
	pthread_mutex_unlock(&fs->lock);
	if (!url)
		return 1;
	r = flush_workers(fs, NULL, url, mask & ~SMBFS_MAIN_BIT);
	if (r == 0 && !(mask & ~SMBFS_MAIN_BIT))
		r = flush_on(fs, NULL, url, -1,
			smbfs_send_cutoff_ms(smbfs_now_ms(), fs->io_deadline_s));
	pthread_mutex_lock(&fs->lock);
	if (r < 0)
		journal_mark_dirty(fs, url, mask);
	else
		journal_forget_upto(fs, url, seq);
	pthread_mutex_unlock(&fs->lock);
	free(url);
	return r;
}

/* A full journal makes every writer wait for a flush of all its files
 * (journal.c). Past three quarters, this thread flushes them oldest first
 * down to half while the writers go on: the server's flushes
 * overlap the writes instead of stopping them. A failed flush (an
 * outage) leaves the rest to the writers' own full-journal flush. */
void *
smbfs_pool_flusher(void *arg)
{
	struct smbfs_pool *p = arg;

	pthread_mutex_lock(&p->mu);
	while (!p->stopping) {
		if (!p->flush_wanted) {
			pthread_cond_wait(&p->fcv, &p->mu);
			continue;
		}
		p->flush_wanted = false;
		pthread_mutex_unlock(&p->mu);
		while (flush_oldest(p->fs) == 0)
			;
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

int
smbfs_pool_close(struct smbfs *fs, struct fuse_file_info *fi)
{
	struct smbfs_fh *h = fh_get(fi);
	uint32_t mask;
	int r = 0;

	if (!fs->pool || !h)
		return 0;
	mask = __atomic_exchange_n(&h->wmask, 0, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < fs->pool->n; i++) {
		int k = mask & (1u << i) ? smbfs_pool_close_hid(fs->pool, (int)i, h->id) : 0;

		if (k < 0 && r == 0 && !smbfs_conn_error(k))
			r = k;
	}
	return r;
}
