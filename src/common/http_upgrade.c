/* Connections taken over after "101 Switching Protocols" (http_server.h,
 * http_upgrade_fn): each runs in its own detached thread; the server's
 * stop turns their stopping flag true and waits for them. */
#include "common/http_upgrade.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/http_guard.h"
#include "common/log.h"

static unsigned active; /* atomic */
static bool stopping;   /* atomic; once true, stays */

/* Two holds: the request's (until MHD says it completed) and the upgraded
 * session's (from the upgrade handler to the session's end). */
struct http_upgrade_job {
	http_upgrade_fn fn;
	void *ctx;
	struct MHD_UpgradeResponseHandle *urh;
	int fd;
	char *extra;
	size_t n;
	unsigned refs; /* atomic */
	bool started;  /* atomic: the upgrade handler ran */
};

static void
job_unref(struct http_upgrade_job *j)
{
	if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		free(j->extra);
		free(j);
	}
}

void
http_upgrade_request_done(struct http_upgrade_job *j)
{
	if (!j)
		return;
	/* MHD calls the upgrade handler before it says the request completed
	 * (measured on 0.9.75; its upgrade path runs both in order). Not
	 * started by now, it never will: the client went away between the
	 * 101 and the switch, or the 101 was never sent. Both holds go. */
	if (!__atomic_load_n(&j->started, __ATOMIC_ACQUIRE)) {
		log_debug("upgraded connection: the client went away before the switch");
		j->fn(j->ctx, -1, NULL, 0, &stopping); /* fd -1: frees ctx only */
		job_unref(j);
	}
	job_unref(j);
}

unsigned
http_upgrades_active(void)
{
	return __atomic_load_n(&active, __ATOMIC_ACQUIRE);
}

static void *
run(void *p)
{
	struct http_upgrade_job *j = p;

	j->fn(j->ctx, j->fd, j->extra, j->n, &stopping);
	MHD_upgrade_action(j->urh, MHD_UPGRADE_ACTION_CLOSE);
	job_unref(j);
	__atomic_sub_fetch(&active, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

static void
on_upgrade(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra_in,
	size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct http_upgrade_job *j = cls;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	(void)req_cls;
	__atomic_store_n(&j->started, true, __ATOMIC_RELEASE);
	/* The guard's response deadline must not cut a long session. */
	http_guard_phase(conn, HTTP_PHASE_HANDLING);
	j->urh = urh;
	j->fd = sock;
	j->extra = extra_in_size ? malloc(extra_in_size) : NULL;
	if (j->extra)
		memcpy(j->extra, extra_in, extra_in_size);
	j->n = j->extra ? extra_in_size : 0;
	__atomic_add_fetch(&active, 1, __ATOMIC_ACQ_REL);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	r = __atomic_load_n(&stopping, __ATOMIC_ACQUIRE)
		    ? EAGAIN
		    : pthread_create(&t, &attr, run, j);
	pthread_attr_destroy(&attr);
	if (r) {
		log_warn("cannot run an upgraded connection: %s", strerror(r));
		j->fn(j->ctx, -1, NULL, 0, &stopping); /* fd -1: frees ctx only */
		MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
		job_unref(j);
		__atomic_sub_fetch(&active, 1, __ATOMIC_ACQ_REL);
	}
}

struct MHD_Response *
http_upgrade_response(struct http_response *r, struct http_upgrade_job **ret_job)
{
	struct http_upgrade_job *j = calloc(1, sizeof *j);
	struct MHD_Response *resp;

	if (!j)
		return NULL;
	j->fn = r->upgrade;
	j->ctx = r->upgrade_ctx;
	j->refs = 2; /* the request's and the session's */
	resp = MHD_create_response_for_upgrade(on_upgrade, j);
	if (!resp) {
		free(j);
		return NULL;
	}
	/* The job owns ctx from here. */
	r->upgrade_ctx = NULL;
	*ret_job = j;
	return resp;
}

void
http_upgrades_stop(void)
{
	struct timespec pause = { 0, 20 * 1000 * 1000 };

	__atomic_store_n(&stopping, true, __ATOMIC_RELEASE);
	for (int i = 0; i < 500 && http_upgrades_active(); i++)
		nanosleep(&pause, NULL);
}
