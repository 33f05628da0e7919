/* nqrust-smbfs connection pool, the main process's side: starting,
 * watching and replacing the worker processes, and handing requests to
 * them (pool.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/opts.h"
#include "smbfs/pool_internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

/* How often a waiting request looks for the kernel's INTERRUPT, and the
 * monitor for workers that died while idle. */
#define POLL_MS 100
#define MONITOR_MS 500

static const char worker_name[] = "nqrust-smbfs-worker";

/* In the child: close what belongs to the main process — the FUSE
 * device, its connections to the server (or the server would keep their
 * sessions and handles for as long as we live), the other workers'
 * sockets — and nothing else: libsmbclient's global state may hold
 * descriptors of its own. */
static void
close_inherited(struct smbfs_pool *p, unsigned self)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	for (unsigned j = 0; j < p->n; j++)
		if (j != self && p->w[j].sock >= 0)
			close(p->w[j].sock);
	if (!d)
		_exit(1);
	while ((de = readdir(d)) != NULL) {
		char link[32], target[16];
		char *end;
		long fd = strtol(de->d_name, &end, 10);
		ssize_t n;

		if (*end || end == de->d_name || fd <= 2 || fd == dirfd(d))
			continue;
		snprintf(link, sizeof link, "/proc/self/fd/%ld", fd);
		n = readlink(link, target, sizeof target - 1);
		target[n > 0 ? n : 0] = '\0';
		if (strcmp(target, "/dev/fuse") == 0 ||
			smbfs_is_server_socket(fd, p->fs->port))
			close(fd);
	}
	closedir(d);
}

/* In the child, right after fork: die with the main process, drop what
 * belongs to it, and say what we are in ps. */
static void
child_setup(struct smbfs_pool *p, unsigned self, pid_t parent)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		signal(sigs[i], SIG_DFL);
	closelog();
	close_inherited(p, self);
	openlog("nqrust-smbfs", LOG_PID, LOG_DAEMON);
	prctl(PR_SET_NAME, "smbfs-worker");
	if (p->argv_area && p->argv_len > sizeof worker_name) {
		memset(p->argv_area, 0, p->argv_len);
		memcpy(p->argv_area, worker_name, sizeof worker_name);
	}
}

/* Fork worker i. No thread of ours is inside libsmbclient while we fork
 * (fs->lock), so the child's copy of its state is consistent; the child
 * makes its own context and never touches ours. */
static int
spawn(struct smbfs_pool *p, unsigned i)
{
	struct smbfs_worker *w = &p->w[i];
	pid_t parent = getpid(), pid;
	int sv[2], e;
	char ready;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	pthread_mutex_lock(&p->fs->lock);
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		child_setup(p, i, parent);
		smbfs_worker_main(p->fs, p->o, w->slot, sv[1]);
	}
	e = errno;
	pthread_mutex_unlock(&p->fs->lock);
	close(sv[1]);
	/* Its first byte: it runs, under its own name. */
	if (pid < 0 || recv(sv[0], &ready, 1, 0) != 1) {
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		close(sv[0]);
		return pid < 0 ? -e : -ECHILD;
	}
	pthread_mutex_lock(&p->mu);
	w->pid = pid;
	w->sock = sv[0];
	w->gen_known = false;
	w->dead = false;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

/* A worker is gone: its connection's acknowledged writes are replayed
 * from the journal before anything else changes the share (retry.c).
 * Atomic, not under fs->lock: that may be held across a request on our
 * own connection waiting for a server that does not answer. */
static void
bump_generation(struct smbfs *fs)
{
	__atomic_add_fetch(&fs->gen, 1, __ATOMIC_SEQ_CST);
}

/* Reap worker i's process and close our end; with p->mu held. */
static void
bury(struct smbfs_worker *w)
{
	if (w->pid > 0) {
		kill(w->pid, SIGKILL);
		waitpid(w->pid, NULL, 0);
		w->pid = 0;
	}
	if (w->sock >= 0)
		close(w->sock);
	w->sock = -1;
}

/* One pass of the monitor, with p->mu held: notice workers that exited
 * while idle, replace dead ones nobody holds. */
static void
tend(struct smbfs_pool *p)
{
	for (unsigned i = 0; i < p->n && !p->stopping; i++) {
		struct smbfs_worker *w = &p->w[i];

		if (!w->dead && w->pid > 0 && waitpid(w->pid, NULL, WNOHANG) == w->pid) {
			w->pid = 0;
			w->dead = true;
			syslog(LOG_WARNING, "%s: connection worker %u exited; replacing it",
				p->fs->mountpoint ? p->fs->mountpoint : "?", i);
			pthread_mutex_unlock(&p->mu);
			bump_generation(p->fs);
			pthread_mutex_lock(&p->mu);
		}
		if (!w->dead || w->busy)
			continue;
		bury(w);
		pthread_mutex_unlock(&p->mu);
		if (spawn(p, i) < 0)
			syslog(LOG_ERR, "%s: cannot start connection worker %u: %m",
				p->fs->mountpoint ? p->fs->mountpoint : "?", i);
		pthread_mutex_lock(&p->mu);
	}
}

static void *
monitor(void *arg)
{
	struct smbfs_pool *p = arg;

	pthread_mutex_lock(&p->mu);
	while (!p->stopping) {
		struct timespec ts;

		tend(p);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += MONITOR_MS * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static bool
usable(const struct smbfs_worker *w)
{
	return !w->busy && !w->dead && w->sock >= 0;
}

int
smbfs_pool_acquire(struct smbfs_pool *p, int prefer, int only)
{
	int i = -1;

	pthread_mutex_lock(&p->mu);
	while (i < 0 && !p->stopping) {
		if (only >= 0 && p->w[only].dead) {
			pthread_mutex_unlock(&p->mu);
			return -ESRCH;
		}
		if (only >= 0 && usable(&p->w[only]))
			i = only;
		else if (only < 0 && prefer >= 0 && (unsigned)prefer < p->n &&
			 usable(&p->w[prefer]))
			i = prefer;
		for (unsigned k = 0; only < 0 && i < 0 && k < p->n; k++) {
			unsigned j = (p->next + k) % p->n;

			if (usable(&p->w[j]))
				i = (int)j;
		}
		if (i < 0)
			pthread_cond_wait(&p->cv, &p->mu);
	}
	if (i >= 0) {
		p->w[i].busy = true;
		p->next = ((unsigned)i + 1) % p->n;
	}
	pthread_mutex_unlock(&p->mu);
	return i >= 0 ? i : -EIO;
}

static int
close_now(struct smbfs_pool *p, int i, uint64_t hid)
{
	struct smbfs_wslot *s = p->w[i].slot;

	s->op = W_CLOSE;
	s->hid = hid;
	s->url[0] = '\0';
	s->size = 0;
	if (smbfs_pool_roundtrip(p, i) < 0)
		return 0; /* died: its handles went with it */
	return s->r;
}

void
smbfs_pool_release(struct smbfs_pool *p, int i)
{
	struct smbfs_worker *w = &p->w[i];

	pthread_mutex_lock(&p->mu);
	while (w->npending > 0 && !w->dead) {
		uint64_t hid = w->pending[--w->npending];

		pthread_mutex_unlock(&p->mu);
		close_now(p, i, hid);
		pthread_mutex_lock(&p->mu);
	}
	w->npending = 0;
	w->busy = false;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int
smbfs_pool_close_hid(struct smbfs_pool *p, int i, uint64_t hid)
{
	struct smbfs_worker *w = &p->w[i];
	int r;

	pthread_mutex_lock(&p->mu);
	if (w->busy && !w->dead && w->npending < SMBFS_PENDING_MAX) {
		w->pending[w->npending++] = hid;
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	while (w->busy && !w->dead && !p->stopping)
		pthread_cond_wait(&p->cv, &p->mu);
	if (w->dead || w->sock < 0 || p->stopping) {
		pthread_mutex_unlock(&p->mu);
		return 0;
	}
	w->busy = true;
	pthread_mutex_unlock(&p->mu);
	r = close_now(p, i, hid);
	smbfs_pool_release(p, i);
	return r;
}

/* Wait for worker i's answer byte, passing on the kernel's INTERRUPT.
 * 0, or -EIO when the worker died. */
static int
await_answer(struct smbfs_worker *w)
{
	bool told = false;
	char c;

	for (;;) {
		struct pollfd pfd = { .fd = w->sock, .events = POLLIN };
		int n = poll(&pfd, 1, POLL_MS);
		ssize_t k;

		if (n < 0 && errno != EINTR)
			return -EIO;
		if (n <= 0) {
			if (!told && fuse_interrupted()) {
				__atomic_store_n(&w->slot->intr, 1, __ATOMIC_RELAXED);
				told = true;
			}
			continue;
		}
		k = recv(w->sock, &c, 1, 0);
		if (k == 1)
			return 0;
		if (k < 0 && errno == EINTR)
			continue;
		return -EIO;
	}
}

static void
died(struct smbfs_pool *p, int i)
{
	pthread_mutex_lock(&p->mu);
	p->w[i].dead = true;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	syslog(LOG_WARNING, "%s: connection worker %d died; its request failed with EIO",
		p->fs->mountpoint ? p->fs->mountpoint : "?", i);
	bump_generation(p->fs);
}

int
smbfs_pool_roundtrip(struct smbfs_pool *p, int i)
{
	struct smbfs_worker *w = &p->w[i];
	char c = 1;
	int r;

	__atomic_store_n(&w->slot->intr, 0, __ATOMIC_RELAXED);
	if (send(w->sock, &c, 1, MSG_NOSIGNAL) != 1) {
		died(p, i);
		return -EPIPE; /* not delivered: another worker may take it */
	}
	r = await_answer(w);
	if (r < 0) {
		died(p, i);
		return r;
	}
	/* Only this thread touches a busy worker's gen. */
	if (w->gen_known && w->gen != w->slot->gen)
		bump_generation(p->fs); /* it reconnected: replay */
	w->gen = w->slot->gen;
	w->gen_known = true;
	return 0;
}

uint64_t
smbfs_pool_new_id(struct smbfs *fs)
{
	if (!fs->pool)
		return 0;
	return __atomic_add_fetch(&fs->pool->next_id, 1, __ATOMIC_RELAXED);
}

/* Where main's argv strings lie, so a worker can overwrite them. */
static void
find_argv_area(struct smbfs_pool *p, int argc, char **argv)
{
	if (argc < 1 || !argv || !argv[0])
		return;
	p->argv_area = argv[0];
	p->argv_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) + 1 - argv[0]);
}

static int
pool_init(struct smbfs_pool *p, struct smbfs *fs, const struct smbfs_opts *o)
{
	pthread_rwlockattr_t ra;

	p->fs = fs;
	p->o = o;
	p->n = o->conns > SMBFS_CONNS_MAX ? SMBFS_CONNS_MAX : o->conns;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	pthread_cond_init(&p->fcv, NULL);
	pthread_rwlockattr_init(&ra);
	/* A waiting replay must not starve behind a stream of writes. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&p->gate, &ra);
	pthread_rwlockattr_destroy(&ra);
	for (unsigned i = 0; i < p->n; i++) {
		p->w[i].sock = -1;
		p->w[i].slot = mmap(NULL, sizeof(struct smbfs_wslot),
			PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (p->w[i].slot == MAP_FAILED) {
			p->w[i].slot = NULL;
			return -ENOMEM;
		}
	}
	return 0;
}

int
smbfs_pool_start(struct smbfs *fs, const struct smbfs_opts *o, int argc, char **argv)
{
	struct smbfs_pool *p = calloc(1, sizeof *p);
	int r;

	if (!p)
		return -ENOMEM;
	fs->pool = p;
	find_argv_area(p, argc, argv);
	r = pool_init(p, fs, o);
	for (unsigned i = 0; r == 0 && i < p->n; i++)
		r = spawn(p, i);
	if (r == 0 && (r = -pthread_create(&p->monitor, NULL, monitor, p)) < 0)
		p->monitor = 0;
	if (r == 0 && (r = -pthread_create(&p->flusher, NULL, smbfs_pool_flusher, p)) < 0)
		p->flusher = 0;
	if (r == 0) {
		fs->gate = &p->gate;
		return 0;
	}
	smbfs_pool_stop(fs);
	return r;
}

void
smbfs_pool_stop(struct smbfs *fs)
{
	struct smbfs_pool *p = fs ? fs->pool : NULL;

	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	p->stopping = true;
	pthread_cond_broadcast(&p->cv);
	pthread_cond_broadcast(&p->fcv);
	pthread_mutex_unlock(&p->mu);
	if (p->monitor)
		pthread_join(p->monitor, NULL);
	if (p->flusher)
		pthread_join(p->flusher, NULL);
	for (unsigned i = 0; i < p->n; i++) {
		bury(&p->w[i]);
		if (p->w[i].slot)
			munmap(p->w[i].slot, sizeof(struct smbfs_wslot));
	}
	fs->gate = NULL;
	fs->pool = NULL;
	pthread_rwlock_destroy(&p->gate);
	pthread_cond_destroy(&p->cv);
	pthread_cond_destroy(&p->fcv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}
