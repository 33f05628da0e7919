/* See claims.h. A short list under one mutex: claims live for the length
 * of one operation, so there are as many as operations in flight. */
#include "manager/services/claims.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct claim {
	struct claim *next;
	char key[CLAIM_KEY_MAX];
	bool cancel;
	bool background;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t released = PTHREAD_COND_INITIALIZER;
static struct claim *head;

static struct claim *
find_locked(const char *key)
{
	for (struct claim *c = head; c; c = c->next)
		if (strcmp(c->key, key) == 0)
			return c;
	return NULL;
}

static int
add_locked(const char *key, bool background)
{
	struct claim *c = calloc(1, sizeof *c);

	if (!c)
		return -ENOMEM;
	snprintf(c->key, sizeof c->key, "%s", key);
	c->background = background;
	c->next = head;
	head = c;
	return 0;
}

static int
busy(struct nq_error *err, const char *what)
{
	return nq_error_setr(err, -EBUSY, "busy", NULL,
		"%s is busy with another operation; try again when it has finished", what);
}

/* With the lock held: claim key if it is free, then drop the lock. */
static int
take_unlock(const char *key, bool background, const char *what, struct nq_error *err)
{
	int r = find_locked(key) ? -EBUSY : add_locked(key, background);

	pthread_mutex_unlock(&lock);
	if (r == -EBUSY)
		return busy(err, what);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "out of memory");
	return 0;
}

static void
deadline_in(struct timespec *until, long timeout_ms)
{
	clock_gettime(CLOCK_REALTIME, until);
	until->tv_sec += timeout_ms / 1000;
	until->tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (until->tv_nsec >= 1000000000L) {
		until->tv_sec++;
		until->tv_nsec -= 1000000000L;
	}
}

int
claim_try(const char *key, const char *what, struct nq_error *err)
{
	struct timespec until;
	struct claim *c;
	int r = 0;

	deadline_in(&until, CLAIM_BACKGROUND_WAIT_MS);
	pthread_mutex_lock(&lock);
	/* Background upkeep never makes an operation fail: wait it out. */
	while ((c = find_locked(key)) && c->background && r == 0)
		r = pthread_cond_timedwait(&released, &lock, &until);
	return take_unlock(key, false, what, err);
}

bool
claim_try_background(const char *key)
{
	pthread_mutex_lock(&lock);
	return take_unlock(key, true, "", NULL) >= 0;
}

int
claim_wait(const char *key, long timeout_ms, const char *what, struct nq_error *err)
{
	struct timespec until;
	int r = 0;

	deadline_in(&until, timeout_ms);
	pthread_mutex_lock(&lock);
	while (find_locked(key) && r == 0)
		r = pthread_cond_timedwait(&released, &lock, &until);
	return take_unlock(key, false, what, err);
}

void
claim_release(const char *key)
{
	pthread_mutex_lock(&lock);
	for (struct claim **p = &head; *p; p = &(*p)->next)
		if (strcmp((*p)->key, key) == 0) {
			struct claim *c = *p;
			*p = c->next;
			free(c);
			break;
		}
	pthread_cond_broadcast(&released);
	pthread_mutex_unlock(&lock);
}

bool
claim_cancel(const char *key)
{
	struct claim *c;

	pthread_mutex_lock(&lock);
	c = find_locked(key);
	if (c)
		c->cancel = true;
	pthread_mutex_unlock(&lock);
	return c != NULL;
}

bool
claim_cancelled(const char *key)
{
	struct claim *c;
	bool v;

	pthread_mutex_lock(&lock);
	c = find_locked(key);
	v = c && c->cancel;
	pthread_mutex_unlock(&lock);
	return v;
}

void
claim_key(char *buf, const char *kind, const char *id)
{
	snprintf(buf, CLAIM_KEY_MAX, "%s:%.80s", kind, id);
}

bool
claim_held(const char *key)
{
	bool held;

	pthread_mutex_lock(&lock);
	held = find_locked(key) != NULL;
	pthread_mutex_unlock(&lock);
	return held;
}
