/* Firecracker driver: `firecracker --api-sock <run_dir>/api.sock`, then
 * its HTTP API over that socket (PUT /machine-config, /boot-source,
 * /drives/rootfs, /actions InstanceStart). Graceful stop is the
 * SendCtrlAltDel action; Firecracker exits when the guest resets. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "agent/vmm/vmm.h"

#define FC_REPLY_MAX 16384
#define FC_IO_TIMEOUT_MS 5000

static void
api_sock_path(const struct vmm_spec *s, char *buf, size_t sz)
{
	snprintf(buf, sz, "%s/api.sock", s->run_dir);
}

static int
connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negerrno();
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = negerrno();
		close(fd);
		return e;
	}
	return fd;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return negerrno();
		}
		p += w, n -= (size_t)w;
	}
	return 0;
}

/* One request, one reply (Connection: close). *ret_status gets the HTTP
 * status; fault (may be NULL) gets Firecracker's fault_message. */
static int
fc_request(const char *sock, const char *method, const char *path, json_t *body,
	int *ret_status, char *fault, size_t faultsz)
{
	char head[512], reply[FC_REPLY_MAX];
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	size_t len = text ? strlen(text) : 0, got = 0;
	int fd, r, status;

	fd = connect_unix(sock);
	if (fd < 0) {
		free(text);
		return fd;
	}
	snprintf(head, sizeof head,
		"%s %s HTTP/1.1\r\nHost: localhost\r\n"
		"Accept: application/json\r\nContent-Type: application/json\r\n"
		"Content-Length: %zu\r\nConnection: close\r\n\r\n",
		method, path, len);
	r = write_all(fd, head, strlen(head));
	if (r >= 0 && len)
		r = write_all(fd, text, len);
	free(text);
	while (r >= 0 && got < sizeof reply - 1) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int pr = poll(&pfd, 1, FC_IO_TIMEOUT_MS);
		if (pr == 0) {
			r = -ETIMEDOUT;
			break;
		}
		ssize_t n = recv(fd, reply + got, sizeof reply - 1 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			r = negerrno();
		if (n <= 0)
			break;
		got += (size_t)n;
		reply[got] = '\0';
		/* Done once the headers and Content-Length bytes are in. */
		char *end = strstr(reply, "\r\n\r\n");
		if (end) {
			const char *cl = strcasestr(reply, "\r\nContent-Length:");
			size_t want = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
			if (got >= (size_t)(end + 4 - reply) + want)
				break;
		}
	}
	close(fd);
	if (r < 0)
		return r;
	reply[got] = '\0';
	if (sscanf(reply, "HTTP/1.%*d %d", &status) != 1)
		return -EPROTO;
	*ret_status = status;
	if (fault && faultsz) {
		char *b = strstr(reply, "\r\n\r\n");
		json_t *j = b ? json_loads(b + 4, 0, NULL) : NULL;
		const char *fm = json_string_value(json_object_get(j, "fault_message"));
		snprintf(fault, faultsz, "%s", fm ? fm : "");
		json_decref(j);
	}
	return 0;
}

/* PUT with a body the driver built; non-2xx becomes a vmm_failed error. */
static int
fc_put(const char *sock, const char *path, json_t *body, struct nq_error *err)
{
	char fault[256] = "";
	int status = 0, r;

	if (!body)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	r = fc_request(sock, "PUT", path, body, &status, fault, sizeof fault);
	json_decref(body);
	if (r < 0)
		return nq_error_setr(err, r, "vmm_failed", NULL,
			"firecracker API PUT %s failed: %s", path, strerror(-r));
	if (status < 200 || status > 299)
		return nq_error_setr(err, -EPROTO, "vmm_failed", NULL,
			"firecracker refused PUT %s (HTTP %d): %s", path, status, fault);
	return 0;
}

static int
wait_socket(const char *sock, const struct vmm_proc *p)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };

	for (int i = 0; i < 500; i++) {
		int fd = connect_unix(sock);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (!vmm_proc_alive(p))
			return -ECHILD;
		nanosleep(&ts, NULL);
	}
	return -ETIMEDOUT;
}

static int
fc_start(const struct vmm_spec *s, struct vmm_proc *ret, struct nq_error *err)
{
	char sock[PATH_MAX + 16], logp[PATH_MAX + 16], fifo[PATH_MAX + 16];
	struct vmm_proc p = { 0 };
	json_t *boot;
	int r;

	api_sock_path(s, sock, sizeof sock);
	snprintf(logp, sizeof logp, "%s/console.log", s->run_dir);
	/* Its stdout is the guest's serial port, its stdin the input: a FIFO
	 * the agent writes keystrokes to (api/console.c). */
	snprintf(fifo, sizeof fifo, "%s/" VMM_CONSOLE_FIFO, s->run_dir);
	unlink(sock);
	unlink(fifo);
	if (mkfifo(fifo, 0600) < 0)
		return nq_error_setr(err, negerrno(), "io_error", NULL,
			"cannot create the console's input FIFO: %s", strerror(errno));
	const char *argv[] = { s->program, "--api-sock", sock, "--id", s->id, NULL };
	r = vmm_spawn(argv, logp, fifo, &p.pid);
	if (r < 0)
		return nq_error_setr(err, r, "vmm_failed", NULL, "cannot start %s: %s",
			s->program, strerror(-r));
	if (vmm_proc_starttime(p.pid, &p.starttime) < 0)
		p.starttime = 0;
	r = wait_socket(sock, &p);
	if (r < 0) {
		nq_error_setr(err, r, "vmm_failed", NULL,
			"firecracker did not open its API socket: %s",
			r == -ECHILD ? "the process exited" : strerror(-r));
		goto fail;
	}
	boot = json_pack("{s:s, s:s}", "kernel_image_path", s->kernel, "boot_args",
		s->boot_args);
	if (boot && s->initrd[0])
		json_object_set_new(boot, "initrd_path", json_string(s->initrd));
	if ((r = fc_put(sock, "/machine-config",
		     json_pack("{s:i, s:i, s:b}", "vcpu_count", (int)s->vcpus,
			     "mem_size_mib", (int)s->memory_mib, "smt", 0),
		     err)) < 0 ||
		(r = fc_put(sock, "/boot-source", boot, err)) < 0 ||
		/* Writeback: guest flushes become fsync of the file (durable
	     * on the SMB server); Firecracker's default Unsafe drops them. */
		(r = fc_put(sock, "/drives/rootfs",
			 json_pack("{s:s, s:s, s:b, s:b, s:s}", "drive_id", "rootfs",
				 "path_on_host", s->rootfs, "is_root_device", 1,
				 "is_read_only", 0, "cache_type", "Writeback"),
			 err)) < 0 ||
		(r = fc_put(sock, "/actions",
			 json_pack("{s:s}", "action_type", "InstanceStart"), err)) < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	vmm_proc_kill(&p);
	unlink(sock);
	return r;
}

static int
fc_request_shutdown(const struct vmm_spec *s, const struct vmm_proc *p)
{
	char sock[PATH_MAX + 16];
	int status = 0, r;
	json_t *body = json_pack("{s:s}", "action_type", "SendCtrlAltDel");

	(void)p;
	api_sock_path(s, sock, sizeof sock);
	r = fc_request(sock, "PUT", "/actions", body, &status, NULL, 0);
	json_decref(body);
	if (r < 0)
		return r;
	return status >= 200 && status <= 299 ? 0 : -EPROTO;
}

/* PATCH /vm {"state": "Paused" | "Resumed"}. */
static int
fc_set_state(const struct vmm_spec *s, const char *state, struct nq_error *err)
{
	char sock[PATH_MAX + 16], fault[256] = "";
	json_t *body = json_pack("{s:s}", "state", state);
	int status = 0, r;

	if (!body)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	api_sock_path(s, sock, sizeof sock);
	r = fc_request(sock, "PATCH", "/vm", body, &status, fault, sizeof fault);
	json_decref(body);
	if (r < 0)
		return nq_error_setr(err, r, "vmm_failed", NULL,
			"firecracker API PATCH /vm (%s) failed: %s", state, strerror(-r));
	if (status < 200 || status > 299)
		return nq_error_setr(err, -EPROTO, "vmm_failed", NULL,
			"firecracker refused PATCH /vm (%s) (HTTP %d): %s", state, status,
			fault);
	return 0;
}

static int
fc_pause(const struct vmm_spec *s, struct nq_error *err)
{
	return fc_set_state(s, "Paused", err);
}

static int
fc_resume(const struct vmm_spec *s, struct nq_error *err)
{
	return fc_set_state(s, "Resumed", err);
}

const struct vmm_ops vmm_firecracker_ops = {
	.name = "firecracker",
	.start = fc_start,
	.request_shutdown = fc_request_shutdown,
	.guest_shutdown = fc_request_shutdown,
	.pause = fc_pause,
	.resume = fc_resume,
};
