/* Bounded deadline calls; see deadline.h. One process-wide table of the
 * workers alive, guarded by one mutex; one condition variable (on
 * CLOCK_MONOTONIC) is broadcast whenever a worker finishes or leaves the
 * table. The lock is never held across fn. */
#include "agent/mounts/deadline.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAP_LIMIT 1024

struct job {
	struct job *next;
	int (*fn)(void *);
	int result;
	bool done;
	bool abandoned;
	char key[DEADLINE_KEY_MAX];
	size_t ctxsz;
	unsigned char ctx[];
};

static struct {
	pthread_once_t once;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct job *jobs; /* every worker alive */
	unsigned n;
	unsigned cap;
} g = { .once = PTHREAD_ONCE_INIT,
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cap = DEADLINE_DEFAULT_CAP };

static void
init_cond(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g.changed, &ca);
	pthread_condattr_destroy(&ca);
}

/* Under the lock. */
static void
unlink_job(struct job *j)
{
	for (struct job **pp = &g.jobs; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			g.n--;
			break;
		}
	pthread_cond_broadcast(&g.changed);
}

static struct job *
find_key(const char *key)
{
	for (struct job *j = g.jobs; j; j = j->next)
		if (!strcmp(j->key, key))
			return j;
	return NULL;
}

static void *
worker(void *arg)
{
	struct job *j = arg;
	int r = j->fn(j->ctx);

	pthread_mutex_lock(&g.lock);
	j->result = r;
	j->done = true;
	if (j->abandoned) {
		unlink_job(j);
		free(j);
	} else {
		pthread_cond_broadcast(&g.changed);
	}
	pthread_mutex_unlock(&g.lock);
	return NULL;
}

static struct timespec
deadline_after(int timeout_ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += timeout_ms / 1000;
	t.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Under the lock: wait until key is free. -EBUSY when its call is stuck
 * (at once, or at our deadline when patient), -ETIMEDOUT when it is still
 * running at our deadline. */
static int
wait_key_free(const char *key, const struct timespec *until, bool patient)
{
	struct job *j;

	while ((j = find_key(key))) {
		if (j->abandoned && !patient)
			return -EBUSY;
		if (pthread_cond_timedwait(&g.changed, &g.lock, until) == ETIMEDOUT &&
			find_key(key))
			return find_key(key)->abandoned ? -EBUSY : -ETIMEDOUT;
	}
	return 0;
}

/* Under the lock: start a worker for a new job; the job is in the table. */
static int
launch(const char *key, int (*fn)(void *), const void *ctx, size_t ctxsz, struct job **ret)
{
	struct job *j;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	if (g.n >= g.cap)
		return -EAGAIN;
	j = calloc(1, sizeof *j + ctxsz);
	if (!j)
		return -ENOMEM;
	j->fn = fn;
	j->ctxsz = ctxsz;
	memcpy(j->ctx, ctx, ctxsz);
	memcpy(j->key, key, strlen(key) + 1);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	r = pthread_create(&t, &attr, worker, j);
	pthread_attr_destroy(&attr);
	if (r != 0) {
		free(j);
		return -EAGAIN;
	}
	j->next = g.jobs;
	g.jobs = j;
	g.n++;
	*ret = j;
	return 0;
}

static int
run(const char *key, int (*fn)(void *ctx), void *ctx, size_t ctxsz, int timeout_ms,
	bool patient)
{
	struct timespec until = deadline_after(timeout_ms < 0 ? 0 : timeout_ms);
	struct job *j = NULL;
	int r;

	if (!key || !*key || strlen(key) >= DEADLINE_KEY_MAX)
		return -EINVAL;
	pthread_once(&g.once, init_cond);
	pthread_mutex_lock(&g.lock);
	r = wait_key_free(key, &until, patient);
	if (r >= 0)
		r = launch(key, fn, ctx, ctxsz, &j);
	if (r < 0) {
		pthread_mutex_unlock(&g.lock);
		return r;
	}
	while (!j->done)
		if (pthread_cond_timedwait(&g.changed, &g.lock, &until) == ETIMEDOUT)
			break;
	if (!j->done) {
		j->abandoned = true; /* the worker unlinks and frees it */
		pthread_mutex_unlock(&g.lock);
		return -ETIMEDOUT;
	}
	unlink_job(j);
	pthread_mutex_unlock(&g.lock);
	memcpy(ctx, j->ctx, ctxsz);
	r = j->result;
	free(j);
	return r;
}

int
deadline_run(const char *key, int (*fn)(void *ctx), void *ctx, size_t ctxsz, int timeout_ms)
{
	return run(key, fn, ctx, ctxsz, timeout_ms, false);
}

int
deadline_run_patient(const char *key, int (*fn)(void *ctx), void *ctx, size_t ctxsz,
	int timeout_ms)
{
	return run(key, fn, ctx, ctxsz, timeout_ms, true);
}

/* A counter of g, read under its lock. */
static unsigned
read_locked(const unsigned *field)
{
	unsigned n;

	pthread_mutex_lock(&g.lock);
	n = *field;
	pthread_mutex_unlock(&g.lock);
	return n;
}

unsigned
deadline_inflight(void)
{
	return read_locked(&g.n);
}

unsigned
deadline_stuck(const char *key)
{
	struct job *j;
	unsigned n;

	pthread_mutex_lock(&g.lock);
	j = key ? find_key(key) : NULL;
	n = j && j->abandoned ? 1 : 0;
	pthread_mutex_unlock(&g.lock);
	return n;
}

void
deadline_set_cap(unsigned cap)
{
	pthread_mutex_lock(&g.lock);
	g.cap = cap < 1 ? 1 : cap > CAP_LIMIT ? CAP_LIMIT : cap;
	pthread_mutex_unlock(&g.lock);
}

unsigned
deadline_cap(void)
{
	return read_locked(&g.cap);
}
