/* nqrust-smbfs: the FUSE operations on top of one libsmbclient context.
 *
 * libsmbclient contexts are not thread-safe; every call into the library
 * goes through struct smbfs's mutex, so the FUSE loop may run
 * multi-threaded. File handles (fi->fh) are SMBCFILE pointers owned by the
 * open file until release. */
#pragma once

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define FUSE_USE_VERSION 35

#include <fuse.h>
#include <libsmbclient.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Largest request we serve and advertise (max_write, st_blksize): FUSE
 * caps a request at max_pages = 256 pages, 1 MiB, below what SMB 3
 * servers negotiate (Samba: 8 MiB reads and writes). */
#define SMBFS_IO_SIZE (1024 * 1024)

/* How file data may be cached by the kernel (mount.cifs cache=). */
enum smbfs_cache {
	SMBFS_CACHE_STRICT = 0, /* page cache, dropped on open */
	SMBFS_CACHE_NONE,       /* direct I/O */
	SMBFS_CACHE_LOOSE,      /* page cache kept across opens */
};

/* Presentation options; owned by main, read-only after mount. */
struct smbfs_view {
	uid_t uid;
	gid_t gid;
	mode_t file_mode;
	mode_t dir_mode;
	bool ro;
	enum smbfs_cache cache;
};

/* Writes acknowledged but not yet flushed (journal.c); under the lock. */
struct jentry;
struct smbfs_lost;
struct smbfs_dirty;
struct smbfs_journal {
	struct jentry *head, **tail;
	size_t bytes; /* data bytes held */
	size_t cap;   /* 0 = no journal */
	unsigned gen; /* fs->gen the journal was last replayed at */
	/* Files whose entries were dropped past their io_deadline instead of
	 * being replayed: their next fsync fails with EIO. */
	struct smbfs_lost *lost;
	bool all_lost; /* a mark could not be allocated: fail the next fsync */
	uint64_t seq;  /* of the last entry added */
	/* With a connection pool: per file, the connections (bit i = worker
	 * i, SMBFS_MAIN_BIT = ours) that changed it since its last flush
	 * (dirty.c); dirty_all: marks that could not be allocated. */
	struct smbfs_dirty *dirty;
	uint32_t dirty_all;
};

struct smbfs_pool;

struct smbfs {
	SMBCCTX *ctx;         /* owned; freed by smbfs_release */
	pthread_mutex_t lock; /* serializes every libsmbclient call */
	char *base_url;       /* "smb://host:port/share", owned */
	size_t base_len;
	struct smbfs_view view;
	const char *mountpoint; /* absolute; borrowed from the options */
	/* Outage handling (retry.c). gen counts connection losses: a file
	 * handle opened under an older generation is reopened before use.
	 * All three under lock. */
	unsigned gen;
	bool outage;
	bool hard;         /* wait for the server forever */
	bool nostrictsync; /* fsync and O_SYNC are not sent to the server */
	unsigned grace_s;  /* soft: how long a request may wait */
	/* io_deadline= (deadline.c): 0, or the life bound in seconds of every
	 * request that changes the share; port: the server's, to find our
	 * sockets. cutoff_ms: the send cutoff of the attempt running now
	 * (monotonic ms, 0 = none), under lock. */
	unsigned io_deadline_s;
	unsigned port;
	int64_t cutoff_ms;
	bool deadline_logged;
	struct smbfs_journal journal;
	/* Set once mounted: retries stop when the session ends (unmount). */
	struct fuse_session *session;
	/* conns= >= 2 (pool.h): the worker processes, and the gate a journal
	 * replay takes exclusively (requests that change the share hold it
	 * shared). NULL in a worker and with conns=1. */
	struct smbfs_pool *pool;
	pthread_rwlock_t *gate;
	/* In a worker: the main process sets it when the kernel interrupts
	 * the request being served (shared memory); NULL otherwise. */
	const int *intr;
};

struct smbfs_opts;
/* A new libsmbclient context for the mount's options (main.c). */
int smbfs_context_new(const struct smbfs_opts *o, SMBCCTX **ret_ctx);

/* Count libsmbclient's new connections as generations (retry.c); call
 * once, before the first connection. */
void smbfs_watch_connections(struct smbfs *fs);

/* Resolve the write-through path (durable.c). 0, or -EOPNOTSUPP with
 * smbfs_durable_unavailable() saying why; then fsync cannot be honoured. */
int smbfs_durable_init(void);
const char *smbfs_durable_unavailable(void);

/* Percent-encode path (a FUSE path starting with '/') after fs->base_url.
 * libsmbclient URL-decodes paths and treats '?' as the start of options,
 * so every byte outside [A-Za-z0-9._~/-] is encoded. Returns a malloc'ed
 * URL (caller frees) or NULL with errno set. */
char *smbfs_url(const struct smbfs *fs, const char *path);

/* List the server's shares ("smb://host:port/") with the same credentials:
 * 0 when the server accepts them. Tells a share that refuses an
 * authenticated user from a wrong password (both are EACCES on the
 * share). */
int smbfs_probe_server(struct smbfs *fs);

/* Append the percent-encoding of s (n bytes) to out (capacity cap, used
 * *len); -ENAMETOOLONG when it does not fit. */
int smbfs_url_encode(char *out, size_t cap, size_t *len, const char *s, size_t n);

/* Append s verbatim (no encoding); -ENAMETOOLONG when it does not fit. */
int smbfs_url_encode_raw(char *out, size_t cap, size_t *len, const char *s);

/* The operation table; the fuse private_data must be a struct smbfs *. */
const struct fuse_operations *smbfs_operations(void);

/* Probe the share root (stat + opendir). Returns 0 or -errno as
 * libsmbclient reported it. */
int smbfs_probe(struct smbfs *fs);

/* Raise /sys/class/bdi/<dev>/read_ahead_kb of the mount at mountpoint to
 * 1 MiB (implemented in readahead.c). Best effort, no error. */
void smbfs_raise_readahead(const char *mountpoint);

/* The device number of the topmost mount at mountpoint (readahead.c):
 * false when nothing is mounted there. */
bool smbfs_mount_dev(const char *mountpoint, unsigned long *ret_dev);

/* Free the context (closing every handle) and the URL. NULL-safe. */
void smbfs_release(struct smbfs *fs);
