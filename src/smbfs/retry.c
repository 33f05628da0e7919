/* Outage ride-through for nqrust-smbfs (see ops_internal.h, smbfs_call).
 *
 * Kernel cifs semantics: on a soft mount a request that meets a broken
 * connection waits for the reconnect for up to the mount's grace
 * (timeout=) and then fails with EIO; on a hard mount it waits forever.
 * Every operation here is idempotent when replayed as we replay it: reads
 * and writes carry their absolute offset, so a write that may or may not
 * have reached the server before the connection broke is sent again to
 * the same offset with the same bytes, and nothing is acknowledged to the
 * kernel before the server acknowledged it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/ops_internal.h"

#include <fuse_lowlevel.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* Backoff between attempts while the server is away. */
#define RETRY_FIRST_MS 50
#define RETRY_MAX_MS 1000
/* A handle the server no longer knows (EBADF after a reconnect) is
 * reopened; a second EBADF on a fresh handle is a real error. */
#define STALE_HANDLE_RETRIES 2

bool
smbfs_conn_error(int r)
{
	switch (-r) {
	case ECONNABORTED:
	case ECONNREFUSED:
	case ECONNRESET:
	case EPIPE:
	case ETIMEDOUT:
	case ENOTCONN:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
	case ENETRESET:
	case ESHUTDOWN:
		return true;
	default:
		return false;
	}
}

bool
smbfs_interrupted(const struct smbfs *fs)
{
	if (fs->intr)
		return __atomic_load_n(fs->intr, __ATOMIC_RELAXED) != 0;
	return fuse_interrupted();
}

static long
elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - since->tv_sec) * 1000 +
	       (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Every open handle belongs to the broken connection: make them reopen
 * on next use (fh_file_locked compares generations). */
static void
conn_lost(struct smbfs *fs)
{
	pthread_mutex_lock(&fs->lock);
	__atomic_add_fetch(&fs->gen, 1, __ATOMIC_SEQ_CST);
	if (!fs->outage) {
		fs->outage = true;
		syslog(LOG_WARNING, "%s: connection to the server lost; %s",
			fs->mountpoint ? fs->mountpoint : "?",
			fs->hard ? "waiting for it (hard mount)"
				 : "retrying within the mount's grace");
	}
	pthread_mutex_unlock(&fs->lock);
}

/* Called after a successful attempt. */
static void
conn_ok(struct smbfs *fs)
{
	if (!__atomic_load_n(&fs->outage, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&fs->lock);
	if (fs->outage) {
		fs->outage = false;
		fs->deadline_logged = false;
		syslog(LOG_NOTICE, "%s: connection to the server restored",
			fs->mountpoint ? fs->mountpoint : "?");
	}
	pthread_mutex_unlock(&fs->lock);
}

/* After a failed attempt: wait and return true to try again, or return
 * false with *r final. A request with a send cutoff is not retried past
 * it (deadline.c). */
static bool
try_again(struct smbfs *fs, const struct timespec *start, unsigned attempt,
	unsigned *stale, int64_t cutoff, int *r)
{
	long waited = elapsed_ms(start), delay = RETRY_FIRST_MS;

	if (*r == -EBADF) {
		if (++*stale > STALE_HANDLE_RETRIES)
			return false;
		conn_lost(fs);
		return true;
	}
	if (!smbfs_conn_error(*r))
		return false;
	conn_lost(fs);
	if (fs->session && fuse_session_exited(fs->session)) {
		*r = -EIO; /* unmounted: nobody is waiting for the answer */
		return false;
	}
	if (smbfs_interrupted(fs)) {
		*r = -EINTR; /* the caller gave up (killed): stop retrying */
		return false;
	}
	if (!fs->hard && waited >= (long)fs->grace_s * 1000) {
		*r = -EIO;
		return false;
	}
	for (unsigned i = 0; i < attempt && delay < RETRY_MAX_MS; i++)
		delay *= 2;
	if (delay > RETRY_MAX_MS)
		delay = RETRY_MAX_MS;
	if (!fs->hard && waited + delay > (long)fs->grace_s * 1000)
		delay = (long)fs->grace_s * 1000 - waited;
	if (smbfs_cutoff_passed(cutoff, smbfs_now_ms() + delay)) {
		*r = -EIO; /* it could not be sent again in time */
		return false;
	}
	if (delay > 0)
		usleep((useconds_t)delay * 1000);
	/* The kernel sends INTERRUPT for a caller that was killed (a fenced
	 * VMM, an agent shutting down): libfuse marks the request and the
	 * retry loop gives it up within one backoff step (≤ 1 s) instead of
	 * holding that caller in uninterruptible wait for the whole grace. */
	if (smbfs_interrupted(fs)) {
		*r = -EINTR;
		return false;
	}
	return true;
}

/* libsmbclient reconnects by itself when it finds its cached connection
 * dead, often inside a call that then succeeds: no error ever reaches us.
 * It registers every new connection in its server cache, so that is where
 * we learn of it: each one starts a generation (handles reopen, the replay
 * journal is sent again). Called inside libsmbclient, with fs->lock held. */
static smbc_add_cached_srv_fn add_cached_orig;
static struct smbfs *watched;

static int
add_cached_hook(SMBCCTX *c, SMBCSRV *srv, const char *server, const char *share,
	const char *workgroup, const char *username)
{
	struct smbfs *fs = watched;
	bool late;
	int r;

	if (fs)
		__atomic_add_fetch(&fs->gen, 1, __ATOMIC_SEQ_CST);
	r = add_cached_orig(c, srv, server, share, workgroup, username);
	if (!fs || !fs->io_deadline_s)
		return r;
	/* Made for a request past its cutoff (the connect may have waited
	 * out a partition): cut it before the request goes out on it; the
	 * request then fails and is not retried (try_again). */
	late = smbfs_cutoff_passed(fs->cutoff_ms, smbfs_now_ms());
	if (smbfs_guard_sockets(fs->port, smbfs_user_timeout_ms(fs->io_deadline_s),
		    late) <= 0)
		syslog(LOG_ERR,
			"%s: no connection to port %u found to bound its "
			"retransmissions (io_deadline)",
			fs->mountpoint ? fs->mountpoint : "?", fs->port);
	return r;
}

void
smbfs_watch_connections(struct smbfs *fs)
{
	add_cached_orig = smbc_getFunctionAddCachedServer(fs->ctx);
	watched = fs;
	smbc_setFunctionAddCachedServer(fs->ctx, add_cached_hook);
}

/* Past its cutoff a request fails and is never sent again: say so once
 * per outage (conn_ok re-arms it). Under lock. */
static int
expired(struct smbfs *fs)
{
	if (!fs->deadline_logged) {
		fs->deadline_logged = true;
		syslog(LOG_WARNING,
			"%s: a change older than io_deadline=%us failed with EIO and "
			"will not be sent again",
			fs->mountpoint ? fs->mountpoint : "?", fs->io_deadline_s);
	}
	return -EIO;
}

/* One attempt with the journal replayed before it, and again right after
 * it when the attempt itself reconnected (its own write, journaled last,
 * is replayed last, so the file ends as the kernel was told). The cutoff
 * is checked after the replay, which may have taken long, right before
 * the attempt; write_attempt checks it again before every send. */
static int
run_attempt(struct smbfs *fs, smbfs_attempt_fn fn, void *arg, int64_t cutoff)
{
	unsigned gen;
	int r, jr;

	r = journal_replay(fs);
	if (r < 0)
		return r;
	if (smbfs_cutoff_passed(cutoff, smbfs_now_ms()))
		return expired(fs);
	gen = fs->gen;
	fs->cutoff_ms = cutoff;
	r = fn(fs, arg);
	fs->cutoff_ms = 0;
	if (r == -EIO && smbfs_cutoff_passed(cutoff, smbfs_now_ms()))
		r = expired(fs);
	if (fs->gen != gen && (jr = journal_replay(fs)) < 0 && r >= 0)
		r = jr;
	return r;
}

/* With a pool, writes run in the workers while we replay the journal on
 * our connection: a replay must not overwrite a write in flight with
 * older bytes of the same range. It takes the gate exclusively; every
 * attempt and every forwarded write holds it shared. */
static void
gate_enter(struct smbfs *fs)
{
	if (!fs->gate)
		return;
	if (__atomic_load_n(&fs->journal.gen, __ATOMIC_RELAXED) !=
		__atomic_load_n(&fs->gen, __ATOMIC_RELAXED))
		pthread_rwlock_wrlock(fs->gate);
	else
		pthread_rwlock_rdlock(fs->gate);
}

static void
gate_leave(struct smbfs *fs)
{
	if (fs->gate)
		pthread_rwlock_unlock(fs->gate);
}

static int
call(struct smbfs *fs, smbfs_attempt_fn fn, void *arg, int64_t cutoff)
{
	struct timespec start;
	unsigned stale = 0;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (unsigned attempt = 0;; attempt++) {
		gate_enter(fs);
		pthread_mutex_lock(&fs->lock);
		r = run_attempt(fs, fn, arg, cutoff);
		pthread_mutex_unlock(&fs->lock);
		gate_leave(fs);
		if (r >= 0 || !try_again(fs, &start, attempt, &stale, cutoff, &r))
			break;
	}
	if (r >= 0)
		conn_ok(fs);
	return r;
}

int
smbfs_call(struct smbfs *fs, smbfs_attempt_fn fn, void *arg)
{
	return call(fs, fn, arg, 0);
}

int
smbfs_call_cutoff(struct smbfs *fs, smbfs_attempt_fn fn, void *arg, int64_t cutoff)
{
	return call(fs, fn, arg, cutoff);
}

int
smbfs_call_update(struct smbfs *fs, smbfs_attempt_fn fn, void *arg)
{
	return call(fs, fn, arg, smbfs_send_cutoff_ms(smbfs_now_ms(), fs->io_deadline_s));
}
