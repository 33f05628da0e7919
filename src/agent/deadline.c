#include "deadline.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct job {
	pthread_mutex_t lock;
	pthread_cond_t done_cond;
	int (*fn)(void *);
	int result;
	bool done;
	bool abandoned;
	size_t ctxsz;
	unsigned char ctx[];
};

static void
job_free(struct job *j)
{
	pthread_mutex_destroy(&j->lock);
	pthread_cond_destroy(&j->done_cond);
	free(j);
}

static void *
worker(void *arg)
{
	struct job *j = arg;
	int r = j->fn(j->ctx);
	bool abandoned;

	pthread_mutex_lock(&j->lock);
	j->result = r;
	j->done = true;
	abandoned = j->abandoned;
	pthread_cond_signal(&j->done_cond);
	pthread_mutex_unlock(&j->lock);
	if (abandoned)
		job_free(j);
	return NULL;
}

int
deadline_run(int (*fn)(void *ctx), void *ctx, size_t ctxsz, int timeout_ms)
{
	struct job *j = calloc(1, sizeof *j + ctxsz);
	pthread_attr_t attr;
	pthread_t t;
	struct timespec until;
	int r = 0;

	if (!j)
		return -ENOMEM;
	pthread_mutex_init(&j->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->done_cond, &ca);
	pthread_condattr_destroy(&ca);
	j->fn = fn;
	j->ctxsz = ctxsz;
	memcpy(j->ctx, ctx, ctxsz);

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, worker, j) != 0) {
		pthread_attr_destroy(&attr);
		job_free(j);
		return -EAGAIN;
	}
	pthread_attr_destroy(&attr);

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&j->lock);
	while (!j->done && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&j->done_cond, &j->lock, &until);
	if (!j->done) {
		j->abandoned = true; /* the worker frees it */
		pthread_mutex_unlock(&j->lock);
		return -ETIMEDOUT;
	}
	pthread_mutex_unlock(&j->lock);
	memcpy(ctx, j->ctx, ctxsz);
	r = j->result;
	job_free(j);
	return r;
}
