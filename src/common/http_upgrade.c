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

struct job {
	http_upgrade_fn fn;
	void *ctx;
	struct MHD_UpgradeResponseHandle *urh;
	int fd;
	char *extra;
	size_t n;
};

static unsigned active; /* atomic */
static bool stopping;   /* atomic; once true, stays */

unsigned
http_upgrades_active(void)
{
	return __atomic_load_n(&active, __ATOMIC_ACQUIRE);
}

static void *
run(void *p)
{
	struct job *j = p;

	j->fn(j->ctx, j->fd, j->extra, j->n, &stopping);
	MHD_upgrade_action(j->urh, MHD_UPGRADE_ACTION_CLOSE);
	free(j->extra);
	free(j);
	__atomic_sub_fetch(&active, 1, __ATOMIC_ACQ_REL);
	return NULL;
}

static void
on_upgrade(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra_in,
	size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
	struct job *j = cls;
	pthread_attr_t attr;
	pthread_t t;
	int r;

	(void)req_cls;
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
		free(j->extra);
		free(j);
		__atomic_sub_fetch(&active, 1, __ATOMIC_ACQ_REL);
	}
}

struct MHD_Response *
http_upgrade_response(struct http_response *r)
{
	struct job *j = calloc(1, sizeof *j);
	struct MHD_Response *resp;

	if (!j)
		return NULL;
	j->fn = r->upgrade;
	j->ctx = r->upgrade_ctx;
	resp = MHD_create_response_for_upgrade(on_upgrade, j);
	if (!resp) {
		free(j);
		return NULL;
	}
	/* The job owns ctx from here (a client that goes away before the
	 * switch leaves it behind: MHD has no callback for that). */
	r->upgrade_ctx = NULL;
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
