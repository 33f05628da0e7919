/* nqrust-smbfs connection pool: a worker process (pool.h). It owns one
 * libsmbclient context, so one connection and one SMB session, and serves
 * one request at a time from its shared slot with the same attempts and
 * the same outage ride-through as the main process (retry.c). It keeps
 * no journal: the main process journals what it acknowledged. Its handles
 * are opened lazily per open file (the main process opened the file
 * first, with its O_CREAT/O_TRUNC) and closed when the main process says
 * the file was closed. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/pool_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct whandle {
	struct whandle *next;
	uint64_t hid;
	struct smbfs_fh h;
	struct fuse_file_info fi;
};

static struct whandle *handles;

static struct whandle *
handle_find(uint64_t hid)
{
	for (struct whandle *w = handles; w; w = w->next)
		if (w->hid == hid)
			return w;
	return NULL;
}

/* The handle of open file hid, created (not yet opened) on first use. */
static struct whandle *
handle_get(const struct smbfs_wslot *s)
{
	struct whandle *w = handle_find(s->hid);

	if (w)
		return w;
	w = calloc(1, sizeof *w);
	if (!w || !(w->h.url = strdup(s->url))) {
		free(w);
		return NULL;
	}
	w->hid = s->hid;
	w->h.flags = s->flags;
	w->fi.fh = (uint64_t)(uintptr_t)&w->h;
	w->next = handles;
	handles = w;
	return w;
}

static void
handle_close(struct smbfs *fs, uint64_t hid)
{
	struct whandle **pp = &handles, *w;

	while (*pp && (*pp)->hid != hid)
		pp = &(*pp)->next;
	if (!(w = *pp))
		return;
	*pp = w->next;
	if (w->h.f)
		smbc_getFunctionClose(fs->ctx)(fs->ctx, w->h.f);
	free(w->h.url);
	free(w);
}

/* A read-write handle on url, if one is open. */
static struct whandle *
handle_for_flush(const struct smbfs_wslot *s)
{
	struct whandle *w = handle_find(s->hid);

	if (w && w->h.flags != O_RDONLY && strcmp(w->h.url, s->url) == 0)
		return w;
	for (w = handles; w; w = w->next)
		if (w->h.flags != O_RDONLY && strcmp(w->h.url, s->url) == 0)
			return w;
	return NULL;
}

static int
serve_io(struct smbfs *fs, struct smbfs_wslot *s)
{
	struct whandle *w = handle_get(s);
	struct io_args a = { .size = s->size, .off = s->off };
	int r;

	if (!w)
		return -ENOMEM;
	a.fi = &w->fi;
	if (s->op == W_READ) {
		a.rbuf = (char *)s->data;
		r = smbfs_call(fs, smbfs_read_attempt, &a);
	} else {
		w->h.sync = s->sync;
		a.wbuf = (const char *)s->data;
		r = smbfs_call_cutoff(fs, smbfs_write_attempt, &a, s->cutoff_ms);
	}
	s->done = a.done;
	return r;
}

static int
serve_flush(struct smbfs *fs, struct smbfs_wslot *s)
{
	struct whandle *w = handle_for_flush(s);

	if (w) {
		struct fh_args a = { .fi = &w->fi };

		return smbfs_call_cutoff(fs, smbfs_fsync_attempt, &a, s->cutoff_ms);
	}
	struct path_file_args a = { .url = s->url, .flush = true };

	return smbfs_call_cutoff(fs, smbfs_path_file_attempt, &a, s->cutoff_ms);
}

static void
serve_one(struct smbfs *fs, struct smbfs_wslot *s)
{
	s->done = 0;
	switch (s->op) {
	case W_READ:
	case W_WRITE:
		s->r = serve_io(fs, s);
		break;
	case W_FLUSH:
		s->r = serve_flush(fs, s);
		break;
	case W_CLOSE:
		handle_close(fs, s->hid);
		s->r = 0;
		break;
	default:
		s->r = -EINVAL;
	}
	s->gen = fs->gen;
}

/* The main process's settings, our own context. */
static void
worker_init(struct smbfs *fs, const struct smbfs *m, const struct smbfs_opts *o,
	const int *intr)
{
	memset(fs, 0, sizeof *fs);
	pthread_mutex_init(&fs->lock, NULL);
	fs->base_url = m->base_url;
	fs->base_len = m->base_len;
	fs->view = m->view;
	fs->mountpoint = m->mountpoint;
	fs->hard = m->hard;
	fs->grace_s = m->grace_s;
	fs->nostrictsync = m->nostrictsync;
	fs->io_deadline_s = m->io_deadline_s;
	fs->port = m->port;
	fs->journal.tail = &fs->journal.head;
	fs->journal.cap = 0; /* the main process journals */
	fs->intr = intr;
	if (smbfs_context_new(o, &fs->ctx) < 0)
		_exit(1);
	smbfs_watch_connections(fs);
}

_Noreturn void
smbfs_worker_main(struct smbfs *main_fs, const struct smbfs_opts *o,
	struct smbfs_wslot *slot, int sock)
{
	struct smbfs fs;

	worker_init(&fs, main_fs, o, &slot->intr);
	if (send(sock, "", 1, MSG_NOSIGNAL) != 1)
		_exit(0);
	for (;;) {
		char c;
		ssize_t n = recv(sock, &c, 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			_exit(0); /* the main process is gone or done with us */
		serve_one(&fs, slot);
		if (send(sock, &c, 1, MSG_NOSIGNAL) != 1)
			_exit(0);
	}
}
