/* nqrust-smbfs connection pool internals (pool.c, pool_io.c, worker.c).
 * Not an API: include only from those. */
#pragma once

#include "smbfs/ops_internal.h"
#include "smbfs/pool.h"

#include <sys/types.h>

enum smbfs_wop { W_READ = 1, W_WRITE, W_FLUSH, W_CLOSE };

/* Room for smbfs_url's longest result: the base URL and a 4 KiB path,
 * every byte percent-encoded. */
#define SMBFS_WSLOT_URL_MAX 16384

/* One worker's request and answer, in memory shared with it (MAP_SHARED).
 * The main process fills the request and sends one byte on the worker's
 * socket; the worker answers and sends one byte back. */
struct smbfs_wslot {
	int op;       /* enum smbfs_wop */
	int flags;    /* the open file's access mode */
	bool sync;    /* O_SYNC/O_DSYNC: write-through */
	uint64_t hid; /* struct smbfs_fh.id */
	int64_t off;
	uint64_t size;
	int64_t cutoff_ms; /* io_deadline send cutoff, fixed at arrival */
	int intr;          /* set while waiting: the kernel interrupted it */
	int r;             /* answer: 0 or -errno */
	uint64_t done;     /* answer: bytes read or acknowledged */
	unsigned gen;      /* answer: the worker's connection generation */
	char url[SMBFS_WSLOT_URL_MAX];
	unsigned char data[SMBFS_IO_SIZE];
};

/* A request waiting for, or holding, a range of a file (pool_io.c). */
struct smbfs_range {
	struct smbfs_range *next;
	const char *url;
	off_t off;
	size_t len;
};

#define SMBFS_PENDING_MAX 32

struct smbfs_worker {
	pid_t pid; /* 0 once reaped */
	int sock;  /* our end of the socketpair, -1 when none */
	struct smbfs_wslot *slot;
	bool busy;      /* a request holds it */
	bool dead;      /* exited or broken: replaced once idle */
	bool gen_known; /* gen is the connection generation seen last */
	unsigned gen;
	/* Open files closed while it was busy: their handles are closed
	 * when the request it serves ends (smbfs_pool_close_hid). */
	uint64_t pending[SMBFS_PENDING_MAX];
	unsigned npending;
};

struct smbfs_pool {
	pthread_mutex_t mu; /* everything below; never held with fs->lock */
	pthread_cond_t cv;  /* a worker became idle or dead, a range freed */
	unsigned n;
	unsigned next; /* where the search for an idle worker starts */
	struct smbfs_worker w[SMBFS_CONNS_MAX];
	struct smbfs_range *ranges; /* writes in flight */
	uint64_t next_id;
	bool stopping;
	pthread_t monitor;
	/* Flushes the journal's files in the background once it is 3/4
	 * full, so writers rarely wait for a flush (pool_io.c). */
	pthread_t flusher;
	pthread_cond_t fcv;
	bool flush_wanted;
	/* Our own connection serves a data request (pool_io.c); atomic. */
	int main_busy;
	pthread_rwlock_t gate; /* fs->gate */
	struct smbfs *fs;
	const struct smbfs_opts *o;
	char *argv_area; /* main's argv strings, overwritten in workers */
	size_t argv_len;
};

/* Take a worker: only >= 0 waits for that one (-ESRCH when it died);
 * otherwise prefer it when idle, else any idle one. Index or -errno. */
int smbfs_pool_acquire(struct smbfs_pool *p, int prefer, int only);
/* Run the request in worker i's slot; 0, -EPIPE when the worker was
 * found dead before it got the request, -EIO when it died serving it (it
 * is then replaced either way). Notes a new connection generation. */
int smbfs_pool_roundtrip(struct smbfs_pool *p, int i);
/* Give worker i back, first closing the handles whose close waited. */
void smbfs_pool_release(struct smbfs_pool *p, int i);
/* Close open file hid's handle on worker i: now when it is idle, after
 * its current request when it is busy (a FUSE FLUSH must not wait for a
 * read riding out an outage). 0 or the close's -errno. */
int smbfs_pool_close_hid(struct smbfs_pool *p, int i, uint64_t hid);
/* The flusher thread (pool_io.c). */
void *smbfs_pool_flusher(void *arg);
