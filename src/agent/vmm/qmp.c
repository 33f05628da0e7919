/* A minimal QMP client for the QEMU driver: one connection per request to
 * <run_dir>/qmp.sock, the capabilities handshake, one command. QMP speaks
 * one JSON object per line; asynchronous events ({"event": …}) may come
 * between a command and its reply and are skipped. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/macro.h"
#include "agent/vmm/vmm.h"

#define QMP_LINE_MAX 8192
#define QMP_IO_TIMEOUT_MS 5000

struct qmp {
	int fd;
	char buf[QMP_LINE_MAX];
	size_t len;
};

/* The next line (without its '\n') as parsed JSON, new reference. */
static int
qmp_read(struct qmp *q, json_t **ret)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		if (nl) {
			size_t n = (size_t)(nl - q->buf) + 1;
			json_t *j = json_loadb(q->buf, n - 1, 0, NULL);
			memmove(q->buf, q->buf + n, q->len - n);
			q->len -= n;
			if (!j)
				return -EPROTO;
			*ret = j;
			return 0;
		}
		if (q->len == sizeof q->buf)
			return -EMSGSIZE;
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		int pr = poll(&pfd, 1, QMP_IO_TIMEOUT_MS);
		if (pr == 0)
			return -ETIMEDOUT;
		if (pr < 0 && errno != EINTR)
			return negerrno();
		if (pr < 0)
			continue;
		ssize_t r = recv(q->fd, q->buf + q->len, sizeof q->buf - q->len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return negerrno();
		if (r == 0)
			return -ECONNRESET;
		q->len += (size_t)r;
	}
}

/* Send {"execute": cmd} and wait for its return (-EPROTO on an error). */
static int
qmp_execute(struct qmp *q, const char *cmd)
{
	char line[128];
	int n = snprintf(line, sizeof line, "{\"execute\": \"%s\"}\n", cmd);

	if (send(q->fd, line, (size_t)n, MSG_NOSIGNAL) != n)
		return -EIO;
	for (;;) {
		json_t *j = NULL;
		int r = qmp_read(q, &j);
		if (r < 0)
			return r;
		bool ret = json_object_get(j, "return") != NULL;
		bool error = json_object_get(j, "error") != NULL;
		json_decref(j);
		if (ret)
			return 0;
		if (error)
			return -EPROTO;
	}
}

int
vmm_qmp_powerdown(const struct vmm_spec *s, const struct vmm_proc *p)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct qmp q = { .fd = -1 };
	json_t *greeting = NULL;
	int r;

	if (!vmm_proc_alive(p))
		return 0;
	if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/qmp.sock", s->run_dir) >=
		sizeof sa.sun_path)
		return -ENAMETOOLONG; /* vmm_qemu_argv left -qmp out */
	q.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q.fd < 0)
		return negerrno();
	if (connect(q.fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		r = negerrno();
		goto out;
	}
	r = qmp_read(&q, &greeting);
	json_decref(greeting);
	if (r >= 0)
		r = qmp_execute(&q, "qmp_capabilities");
	if (r >= 0)
		r = qmp_execute(&q, "system_powerdown");
out:
	close(q.fd);
	return r;
}
