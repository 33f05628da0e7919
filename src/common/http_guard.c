/* See http_guard.h. */
#include "common/http_guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/macro.h"

#define ADDR_MAX (INET6_ADDRSTRLEN + 1)

struct conn_track {
	struct conn_track *prev, *next;
	struct http_guard *g;
	int fd;
	char addr[ADDR_MAX]; /* "" for unix-socket peers: not capped */
	enum http_conn_phase phase;
	struct timespec since; /* when phase began */
	bool dropped;          /* shut down by the guard, not yet closed */
};

struct http_guard {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	bool thread_started, stopping;
	unsigned header_timeout, per_addr;
	struct conn_track *head;
};

static double
elapsed(const struct timespec *since, const struct timespec *now)
{
	return (double)(now->tv_sec - since->tv_sec) +
	       (double)(now->tv_nsec - since->tv_nsec) / 1e9;
}

void
http_addr_text(const struct sockaddr *sa, char *buf, size_t sz)
{
	snprintf(buf, sz, "unix");
	if (!sa)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
			(socklen_t)sz);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6))
			inet_ntop(AF_INET, &a6->s6_addr[12], buf, (socklen_t)sz);
		else
			inet_ntop(AF_INET6, a6, buf, (socklen_t)sz);
	}
}

/* Under the lock. */
static void
drop(struct conn_track *c, const char *why)
{
	if (c->dropped)
		return;
	c->dropped = true;
	(void)shutdown(c->fd, SHUT_RDWR);
	log_debug("connection dropped client=%s reason=%s", c->addr[0] ? c->addr : "unix",
		why);
}

static double
deadline_of(const struct http_guard *g, enum http_conn_phase p)
{
	switch (p) {
	case HTTP_PHASE_WAITING:
	case HTTP_PHASE_RECEIVING:
		return g->header_timeout;
	case HTTP_PHASE_RESPONDING:
		return HTTP_GUARD_RESPONSE_TIMEOUT;
	case HTTP_PHASE_HANDLING:
		break;
	}
	return 0;
}

static void *
watchdog(void *arg)
{
	struct http_guard *g = arg;
	struct timespec now, until;

	pthread_mutex_lock(&g->lock);
	while (!g->stopping) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		for (struct conn_track *c = g->head; c; c = c->next) {
			double limit = deadline_of(g, c->phase);
			if (limit > 0 && !c->dropped && elapsed(&c->since, &now) >= limit)
				drop(c, c->phase == HTTP_PHASE_RESPONDING
						? "response_timeout"
						: "header_timeout");
		}
		/* Four looks per header timeout, at most one per second. */
		clock_gettime(CLOCK_MONOTONIC, &until);
		long ms = g->header_timeout >= 4 ? 1000 : (long)g->header_timeout * 250;
		until.tv_sec += ms / 1000;
		until.tv_nsec += (ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L)
			until.tv_sec++, until.tv_nsec -= 1000000000L;
		pthread_cond_timedwait(&g->wake, &g->lock, &until);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

int
http_guard_new(unsigned header_timeout, unsigned per_addr, struct http_guard **ret)
{
	struct http_guard *g = calloc(1, sizeof *g);
	pthread_condattr_t ca;
	int r;

	if (!g)
		return -ENOMEM;
	g->header_timeout = header_timeout ? header_timeout
					   : HTTP_GUARD_HEADER_TIMEOUT_DEFAULT;
	g->per_addr = per_addr ? per_addr : HTTP_GUARD_PER_ADDR_DEFAULT;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&g->wake, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&g->thread, NULL, watchdog, g);
	if (r != 0) {
		http_guard_free(g);
		return -r;
	}
	g->thread_started = true;
	*ret = g;
	return 0;
}

void
http_guard_free(struct http_guard *g)
{
	if (!g)
		return;
	if (g->thread_started) {
		pthread_mutex_lock(&g->lock);
		g->stopping = true;
		pthread_cond_signal(&g->wake);
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->thread, NULL);
	}
	/* Every listener has stopped: MHD sent CLOSED for each connection. */
	while (g->head) {
		struct conn_track *c = g->head;
		g->head = c->next;
		free(c);
	}
	pthread_cond_destroy(&g->wake);
	pthread_mutex_destroy(&g->lock);
	free(g);
}

http_mhd_result
http_guard_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct http_guard *g = cls;
	struct conn_track *oldest = NULL;
	char key[ADDR_MAX];
	unsigned n = 0;
	http_mhd_result ok = MHD_YES;
	(void)addrlen;

	if (!addr || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6))
		return MHD_YES;
	http_addr_text(addr, key, sizeof key);
	pthread_mutex_lock(&g->lock);
	for (struct conn_track *c = g->head; c; c = c->next) {
		if (c->dropped || strcmp(c->addr, key) != 0)
			continue;
		n++;
		if (c->phase == HTTP_PHASE_WAITING &&
			(!oldest || elapsed(&c->since, &oldest->since) < 0))
			oldest = c;
	}
	if (n >= g->per_addr) {
		if (oldest)
			drop(oldest, "evicted_by_newer_connection");
		else
			ok = MHD_NO;
	}
	pthread_mutex_unlock(&g->lock);
	if (ok == MHD_NO)
		log_debug("connection refused client=%s reason=per_address_limit", key);
	return ok;
}

void
http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
	enum MHD_ConnectionNotificationCode toe)
{
	struct http_guard *g = cls;
	struct conn_track *c = *socket_context;
	const union MHD_ConnectionInfo *ci;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		c = calloc(1, sizeof *c);
		if (!c)
			return; /* untracked: MHD still serves it */
		c->g = g;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci && ci->client_addr &&
			(ci->client_addr->sa_family == AF_INET ||
				ci->client_addr->sa_family == AF_INET6))
			http_addr_text(ci->client_addr, c->addr, sizeof c->addr);
		c->phase = HTTP_PHASE_WAITING;
		clock_gettime(CLOCK_MONOTONIC, &c->since);
		if (c->fd < 0) {
			free(c);
			return;
		}
		pthread_mutex_lock(&g->lock);
		c->next = g->head;
		if (g->head)
			g->head->prev = c;
		g->head = c;
		pthread_mutex_unlock(&g->lock);
		*socket_context = c;
		return;
	}
	if (!c)
		return;
	pthread_mutex_lock(&g->lock);
	if (c->prev)
		c->prev->next = c->next;
	else
		g->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	pthread_mutex_unlock(&g->lock);
	free(c);
	*socket_context = NULL;
}

void
http_guard_phase(struct MHD_Connection *conn, enum http_conn_phase phase)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn,
		MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_track *c = ci ? ci->socket_context : NULL;

	if (!c)
		return;
	pthread_mutex_lock(&c->g->lock);
	c->phase = phase;
	clock_gettime(CLOCK_MONOTONIC, &c->since);
	pthread_mutex_unlock(&c->g->lock);
}
