/* A minimal QMP client for the QEMU driver: connect to the VM's monitor
 * socket (<run_dir>/qmp.sock, -qmp in qemu.c), read the greeting, leave
 * capabilities negotiation, run one command and wait for its answer,
 * skipping the asynchronous events QEMU interleaves ({"event": …}). Each
 * step is bounded by QMP_TIMEOUT_MS. */
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

#define QMP_TIMEOUT_MS 5000
#define QMP_LINE_MAX 8192

struct qmp {
	int fd;
	char buf[QMP_LINE_MAX];
	size_t len;
};

static int
qmp_connect(const struct vmm_spec *s, struct qmp *q)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if ((size_t)snprintf(sa.sun_path, sizeof sa.sun_path, "%s/qmp.sock", s->run_dir) >=
		sizeof sa.sun_path)
		return -ENAMETOOLONG;
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (q->fd < 0)
		return negerrno();
	if (connect(q->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		return negerrno();
	return 0;
}

/* The next message (one JSON object per line) into *ret (caller decrefs). */
static int
qmp_read(struct qmp *q, json_t **ret)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		if (nl) {
			*nl = '\0';
			json_t *j = json_loads(q->buf, 0, NULL);
			size_t used = (size_t)(nl + 1 - q->buf);
			memmove(q->buf, nl + 1, q->len - used);
			q->len -= used;
			if (!j)
				return -EPROTO;
			*ret = j;
			return 0;
		}
		if (q->len == sizeof q->buf)
			return -EMSGSIZE;
		struct pollfd pfd = { .fd = q->fd, .events = POLLIN };
		int pr = poll(&pfd, 1, QMP_TIMEOUT_MS);
		if (pr == 0)
			return -ETIMEDOUT;
		if (pr < 0 && errno != EINTR)
			return negerrno();
		ssize_t n = pr < 0 ? 0
				   : recv(q->fd, q->buf + q->len, sizeof q->buf - q->len, 0);
		if (n < 0 && errno != EINTR)
			return negerrno();
		if (n == 0 && pr > 0)
			return -ECONNRESET;
		q->len += n > 0 ? (size_t)n : 0;
	}
}

/* Send {"execute": cmd} and wait for its return; QMP's error class and
 * description go into desc. */
static int
qmp_execute(struct qmp *q, const char *cmd, char *desc, size_t descsz)
{
	char line[128];
	int len = snprintf(line, sizeof line, "{\"execute\": \"%s\"}\n", cmd);

	if (send(q->fd, line, (size_t)len, MSG_NOSIGNAL) != len)
		return -EIO;
	for (;;) {
		json_t *j = NULL;
		int r = qmp_read(q, &j);
		if (r < 0)
			return r;
		bool done = json_object_get(j, "return") != NULL;
		json_t *e = json_object_get(j, "error");
		if (e) {
			snprintf(desc, descsz, "%s",
				json_string_value(json_object_get(e, "desc")) ?: "error");
			json_decref(j);
			return -EPROTO;
		}
		json_decref(j);
		if (done)
			return 0;
	}
}

int
vmm_qmp_command(const struct vmm_spec *s, const char *command, struct nq_error *err)
{
	struct qmp q = { .fd = -1 };
	char desc[256] = "";
	json_t *greeting = NULL;
	int r;

	r = qmp_connect(s, &q);
	if (r >= 0)
		r = qmp_read(&q, &greeting);
	json_decref(greeting);
	if (r >= 0)
		r = qmp_execute(&q, "qmp_capabilities", desc, sizeof desc);
	if (r >= 0)
		r = qmp_execute(&q, command, desc, sizeof desc);
	if (q.fd >= 0)
		close(q.fd);
	if (r < 0)
		return nq_error_setr(err, r, "vmm_failed", NULL,
			"QEMU's monitor refused %s: %s", command,
			desc[0] ? desc : strerror(-r));
	return 0;
}

int
vmm_qmp_powerdown(const struct vmm_spec *s, const struct vmm_proc *p)
{
	struct nq_error err = { 0 };

	if (!vmm_proc_alive(p))
		return 0;
	return vmm_qmp_command(s, "system_powerdown", &err);
}
