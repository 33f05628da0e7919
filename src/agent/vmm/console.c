/* QEMU serial console pump: see console.h. */
#include "agent/vmm/console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "agent/vmm/vms.h"

#define CONNECT_PATIENCE_MS 30000
#define PUMP_TICK_MS 200

struct con {
	bool used;
	char id[40];
	char path[108];
	int fd;           /* -1 while connecting */
	long long giveup; /* ms: stop trying to connect */
};

static struct {
	pthread_mutex_t lock;
	struct con c[VM_MAX];
	pthread_t thread;
	bool started, stopping;
} P = { .lock = PTHREAD_MUTEX_INITIALIZER };

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return negerrno();
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int r = negerrno();
		close(fd);
		return r;
	}
	return fd;
}

static struct con *
find(const char *id)
{
	for (size_t i = 0; i < ARRAY_SIZE(P.c); i++)
		if (P.c[i].used && !strcmp(P.c[i].id, id))
			return &P.c[i];
	return NULL;
}

static void
drop(struct con *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->used = false;
}

void
console_attach(const char *vm_id, const char *sock_path)
{
	struct con *c;

	pthread_mutex_lock(&P.lock);
	c = find(vm_id);
	for (size_t i = 0; !c && i < ARRAY_SIZE(P.c); i++)
		if (!P.c[i].used)
			c = &P.c[i];
	if (c) {
		if (c->used)
			drop(c);
		c->used = true;
		c->fd = -1;
		snprintf(c->id, sizeof c->id, "%s", vm_id);
		snprintf(c->path, sizeof c->path, "%s", sock_path);
		c->giveup = now_ms() + CONNECT_PATIENCE_MS;
	}
	pthread_mutex_unlock(&P.lock);
}

/* Under the lock: connect what waits; fill fds with the connections. */
static size_t
prepare(struct pollfd *fds, size_t *idx)
{
	long long now = now_ms();
	size_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(P.c); i++) {
		struct con *c = &P.c[i];
		if (!c->used)
			continue;
		if (c->fd < 0) {
			int fd = connect_unix(c->path);
			if (fd >= 0) {
				c->fd = fd;
				log_debug("console connected id=%s", c->id);
			} else if (now > c->giveup) {
				log_warn("cannot connect to the VM's console id=%s err=%s",
					c->id, strerror(-fd));
				drop(c);
				continue;
			} else {
				continue;
			}
		}
		fds[n] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
		idx[n++] = i;
	}
	return n;
}

static void *
pump(void *arg)
{
	static struct pollfd fds[VM_MAX];
	static size_t idx[VM_MAX];
	char buf[16384];

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&P.lock);
		if (P.stopping) {
			pthread_mutex_unlock(&P.lock);
			return NULL;
		}
		size_t n = prepare(fds, idx);
		pthread_mutex_unlock(&P.lock);
		if (poll(fds, n, PUMP_TICK_MS) <= 0)
			continue;
		pthread_mutex_lock(&P.lock);
		for (size_t i = 0; i < n; i++) {
			struct con *c = &P.c[idx[i]];
			if (!fds[i].revents || !c->used || c->fd != fds[i].fd)
				continue;
			/* QEMU logs the output itself: the pump only drains it. */
			ssize_t r = read(c->fd, buf, sizeof buf);
			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
				drop(c); /* QEMU went away */
		}
		pthread_mutex_unlock(&P.lock);
	}
}

/* len bytes of buf to fd (non-blocking) until done or the deadline: the
 * bytes written, or -ETIMEDOUT / -ENOTCONN when none were. */
static int
write_until(int fd, const void *buf, size_t len, long long deadline)
{
	size_t done = 0;
	int err = -ETIMEDOUT;

	while (done < len) {
		ssize_t r = send(fd, (const char *)buf + done, len - done,
			MSG_NOSIGNAL | MSG_DONTWAIT);
		if (r < 0 && errno == ENOTSOCK)
			r = write(fd, (const char *)buf + done, len - done);
		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR) {
			err = -ENOTCONN;
			break;
		}
		long long left = deadline - now_ms();
		if (left <= 0)
			break;
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		(void)poll(&p, 1, (int)left);
	}
	return done ? (int)done : err;
}

int
console_input(const char *vm_id, const void *buf, size_t len, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	struct con *c;
	int fd = -1, r;

	pthread_mutex_lock(&P.lock);
	c = find(vm_id);
	if (c && c->fd >= 0)
		fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 3);
	pthread_mutex_unlock(&P.lock);
	if (fd < 0)
		return -ENOTCONN;
	r = write_until(fd, buf, len, deadline);
	close(fd);
	return r;
}

int
console_input_fifo(const char *path, const void *buf, size_t len, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	int fd = open(path, O_WRONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC), r;

	/* ENXIO: nobody reads it (the VMM is gone). */
	if (fd < 0)
		return errno == ENXIO || errno == ENOENT ? -ENOTCONN : negerrno();
	r = write_until(fd, buf, len, deadline);
	close(fd);
	return r;
}

int
console_pump_start(void)
{
	int r;

	if (P.started)
		return 0;
	P.stopping = false;
	r = pthread_create(&P.thread, NULL, pump, NULL);
	if (r)
		return -r;
	P.started = true;
	return 0;
}

void
console_pump_stop(void)
{
	if (!P.started)
		return;
	pthread_mutex_lock(&P.lock);
	P.stopping = true;
	pthread_mutex_unlock(&P.lock);
	pthread_join(P.thread, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(P.c); i++)
		if (P.c[i].used)
			drop(&P.c[i]);
	P.started = false;
}
