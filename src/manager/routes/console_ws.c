/* One console WebSocket client (console.h). Two threads: the upgraded
 * connection's thread reads the client's frames (input, ping, close); an
 * output thread long-polls the agent's console stream and sends what
 * arrives as binary frames. Bounds: frames from the client at most
 * CONSOLE_INPUT_MAX bytes, one chunk (at most 64 KiB, the agent's) in
 * flight per client, SEND_DEADLINE_MS for a client to take it (a client
 * that reads slower is dropped: it never holds up the VM or the others),
 * SESSIONS_PER_VM clients per VM and SESSIONS_MAX in all. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "manager/agent_client.h"
#include "manager/routes/console.h"
#include "manager/routes/ws.h"
#include "manager/services/hostpool.h"

#define SESSIONS_PER_VM 8
#define SESSIONS_MAX 64
#define SEND_DEADLINE_MS 10000
#define STREAM_WAIT_S 20

struct console_session {
	struct manager *m;
	char id[40];
	struct backend_env env;
	bool may_type;
	bool counted; /* holds a place in S (from the start of its run) */
	unsigned tail;
	int fd;
	bool closing; /* atomic */
	pthread_mutex_t send_lock;
	uint8_t in[CONSOLE_INPUT_MAX + WS_HEADER_MAX];
	size_t in_len;
};

static struct {
	pthread_mutex_t lock;
	unsigned total;
	struct {
		char id[40];
		unsigned n;
	} vm[SESSIONS_MAX];
} S = { .lock = PTHREAD_MUTEX_INITIALIZER };

/* Count a client of id in (true) or out; false when over a cap. peek:
 * only tell whether one more would fit. */
static bool
count(const char *id, bool in, bool peek)
{
	bool ok = false;

	pthread_mutex_lock(&S.lock);
	if (peek) {
		unsigned n = 0;
		for (size_t i = 0; i < SESSIONS_MAX; i++)
			if (S.vm[i].n && !strcmp(S.vm[i].id, id))
				n = S.vm[i].n;
		ok = n < SESSIONS_PER_VM && S.total < SESSIONS_MAX;
		goto out;
	}
	for (size_t i = 0; i < SESSIONS_MAX; i++) {
		if (!in && S.vm[i].n && !strcmp(S.vm[i].id, id)) {
			S.vm[i].n--;
			S.total--;
			ok = true;
			break;
		}
		if (in && S.vm[i].n && !strcmp(S.vm[i].id, id)) {
			ok = S.vm[i].n < SESSIONS_PER_VM && S.total < SESSIONS_MAX;
			S.vm[i].n += ok;
			S.total += ok;
			goto out;
		}
	}
	for (size_t i = 0; in && S.total < SESSIONS_MAX && i < SESSIONS_MAX; i++) {
		if (!S.vm[i].n) {
			snprintf(S.vm[i].id, sizeof S.vm[i].id, "%s", id);
			S.vm[i].n = 1;
			S.total++;
			ok = true;
			break;
		}
	}
out:
	pthread_mutex_unlock(&S.lock);
	return ok;
}

struct console_session *
console_session_new(struct manager *m, const char *id, struct backend_env *env,
	bool may_type, unsigned tail, struct http_response *resp)
{
	struct console_session *s;

	/* Counted in only when its run starts: a client that leaves before
	 * the switch never runs (and so never holds a place). */
	if (!count(id, true, true)) {
		hosts_env_release(env);
		http_reply_errorf(resp, "too_many_requests", NULL,
			"this VM already has %d console clients (or the manager %d)",
			SESSIONS_PER_VM, SESSIONS_MAX);
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		hosts_env_release(env);
		http_reply_errorf(resp, "internal_error", NULL, "out of memory");
		return NULL;
	}
	s->m = m;
	snprintf(s->id, sizeof s->id, "%s", id);
	s->env = *env;
	s->may_type = may_type;
	s->tail = tail;
	s->fd = -1;
	pthread_mutex_init(&s->send_lock, NULL);
	return s;
}

static void
session_free(struct console_session *s)
{
	if (s->counted)
		count(s->id, false, false);
	hosts_env_release(&s->env);
	pthread_mutex_destroy(&s->send_lock);
	/* Keystrokes may be a guest's password. */
	explicit_bzero(s->in, sizeof s->in);
	free(s);
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* All of buf within the deadline, or the session is closing. */
static int
send_all(struct console_session *s, const uint8_t *buf, size_t n, long long deadline)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = send(s->fd, buf + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return -EPIPE;
		long long left = deadline - now_ms();
		if (left <= 0 || __atomic_load_n(&s->closing, __ATOMIC_ACQUIRE))
			return -ETIMEDOUT;
		struct pollfd p = { .fd = s->fd, .events = POLLOUT };
		(void)poll(&p, 1, left > 200 ? 200 : (int)left);
	}
	return 0;
}

/* One frame to the client; a client too slow to take it is dropped. */
static int
send_frame(struct console_session *s, unsigned op, const void *p, size_t n)
{
	uint8_t hdr[WS_HEADER_MAX];
	size_t hl = ws_header(hdr, op, n);
	long long deadline = now_ms() + SEND_DEADLINE_MS;
	int r;

	pthread_mutex_lock(&s->send_lock);
	r = send_all(s, hdr, hl, deadline);
	if (r >= 0 && n)
		r = send_all(s, p, n, deadline);
	pthread_mutex_unlock(&s->send_lock);
	if (r < 0)
		__atomic_store_n(&s->closing, true, __ATOMIC_RELEASE);
	return r;
}

static void
send_notice(struct console_session *s, const char *kind, const char *msg)
{
	json_t *j = json_pack("{s:s, s:s}", "type", kind, "message", msg);
	char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (t)
		(void)send_frame(s, WS_OP_TEXT, t, strlen(t));
	free(t);
	json_decref(j);
}

/* A pause that ends early when the session closes. */
static void
pause_ms(struct console_session *s, int ms)
{
	struct timespec t = { 0, 100 * 1000 * 1000 };

	for (int i = 0; i < ms / 100 && !__atomic_load_n(&s->closing, __ATOMIC_ACQUIRE);
		i++)
		nanosleep(&t, NULL);
}

/* The tail first, then the stream from where it ended. */
static void *
output_loop(void *p)
{
	struct console_session *s = p;
	long long next = -1;
	bool failing = false;
	char path[200];

	while (!__atomic_load_n(&s->closing, __ATOMIC_ACQUIRE)) {
		struct agent_call_ext x = { .raw = true, .abort = &s->closing };
		struct agent_reply rep = { 0 };
		struct nq_error err = { 0 };

		if (next < 0)
			snprintf(path, sizeof path, "/v1/vms/%s/console?tail=%u", s->id,
				s->tail);
		else
			snprintf(path, sizeof path,
				"/v1/vms/%s/console/stream?offset=%lld&wait=%d", s->id,
				next, STREAM_WAIT_S);
		int r = agent_call_ext(s->env.agent, "GET", path, NULL, 0,
			(STREAM_WAIT_S + 10) * 1000L, &x, &rep, &err);
		agent_reply_release(&rep);
		if (r < 0) {
			if (!failing && !__atomic_load_n(&s->closing, __ATOMIC_ACQUIRE))
				send_notice(s, "error", err.message);
			failing = true;
			pause_ms(s, 2000);
			continue;
		}
		failing = false;
		if (x.raw_len)
			(void)send_frame(s, WS_OP_BINARY, x.raw_body, x.raw_len);
		free(x.raw_body);
		next = x.next_offset >= 0 ? x.next_offset : 0;
	}
	return NULL;
}

/* One frame from the client. */
static void
on_frame(struct console_session *s, const struct ws_frame *f, bool *told)
{
	struct nq_error err = { 0 };

	switch (f->opcode) {
	case WS_OP_TEXT:
	case WS_OP_BINARY:
		if (!s->may_type) {
			if (!*told)
				send_notice(s, "notice",
					"read-only: a viewer may watch this console but not type");
			*told = true;
		} else if (
			f->len &&
			console_send_input(&s->env, s->id, f->payload, f->len, &err) < 0) {
			send_notice(s, "error", err.message);
		}
		break;
	case WS_OP_PING:
		(void)send_frame(s, WS_OP_PONG, f->payload, f->len);
		break;
	case WS_OP_CLOSE:
		(void)send_frame(s, WS_OP_CLOSE, f->payload, f->len > 2 ? 2 : f->len);
		__atomic_store_n(&s->closing, true, __ATOMIC_RELEASE);
		break;
	default:
		break;
	}
}

/* Whole frames out of s->in; false when the client broke the protocol
 * (it got a close frame with the reason). */
static bool
drain_frames(struct console_session *s, bool *told)
{
	struct ws_frame f;
	int r;

	while ((r = ws_parse(s->in, s->in_len, CONSOLE_INPUT_MAX, &f)) > 0) {
		on_frame(s, &f, told);
		memmove(s->in, s->in + r, s->in_len - (size_t)r);
		s->in_len -= (size_t)r;
	}
	if (r < 0) {
		/* 1009 message too big, 1002 protocol error */
		uint8_t code[2] = { 0x03, r == -EMSGSIZE ? 0xf1 : 0xea };
		(void)send_frame(s, WS_OP_CLOSE, code, 2);
		return false;
	}
	return true;
}

void
console_session_run(void *ctx, int fd, const char *extra, size_t n, const bool *stopping)
{
	struct console_session *s = ctx;
	bool told = false;
	pthread_t out;

	if (fd < 0) {
		session_free(s);
		return;
	}
	s->fd = fd;
	if (n > sizeof s->in)
		n = 0; /* more than one frame may hold: a broken client */
	if (n)
		memcpy(s->in, extra, n);
	s->in_len = n;
	s->counted = count(s->id, true, false);
	if (!s->counted) {
		uint8_t code[2] = { 0x03, 0xf5 }; /* 1013 try again later */
		send_notice(s, "error", "this VM has too many console clients");
		(void)send_frame(s, WS_OP_CLOSE, code, 2);
		session_free(s);
		return;
	}
	if (!s->may_type)
		send_notice(s, "notice",
			"read-only: a viewer may watch this console but not type");
	told = !s->may_type;
	if (pthread_create(&out, NULL, output_loop, s) != 0) {
		session_free(s);
		return;
	}
	while (!__atomic_load_n(&s->closing, __ATOMIC_ACQUIRE) &&
		!__atomic_load_n(stopping, __ATOMIC_ACQUIRE)) {
		if (!drain_frames(s, &told))
			break;
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t r = recv(fd, s->in + s->in_len, sizeof s->in - s->in_len,
			MSG_DONTWAIT);
		if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (r > 0)
			s->in_len += (size_t)r;
	}
	__atomic_store_n(&s->closing, true, __ATOMIC_RELEASE);
	pthread_join(out, NULL);
	log_debug("console client left id=%s", s->id);
	session_free(s);
}
