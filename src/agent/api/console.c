/* The agent's console routes (docs/agent-api.md, "Console") and the VM
 * with its disk figures:
 *   GET  /v1/vms/{id}                            the VM + disk {path, size_bytes,
 *                                                allocated_bytes}
 *   GET  /v1/vms/{id}/console?tail=N             the serial log's last N bytes
 *   GET  /v1/vms/{id}/console/stream?offset=N&wait=S
 *                                                bytes from offset (long poll)
 *   POST /v1/vms/{id}/console/input              raw bytes to the serial port
 * The log file is the one the VMM writes: QEMU's serial.log (its serial
 * chardev's logfile), Firecracker's console.log (its stdout is the guest's
 * serial port). Paths are built here from the validated id. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/http_server.h"
#include "common/macro.h"
#include "common/validate.h"
#include "agent/api/api.h"
#include "agent/mounts/deadline.h"
#include "agent/vmm/console.h"
#include "agent/vmm/vmm.h"
#include "agent/vmm/vms.h"

#define TAIL_DEFAULT (64 * 1024)
#define TAIL_MAX (1024 * 1024)
#define STREAM_CHUNK (64 * 1024)
#define STREAM_WAIT_MAX 25
#define INPUT_TIMEOUT_MS 2000
#define DISK_STAT_TIMEOUT_MS 300

/* The VM's serial log, opened read-only; -ENOENT for an unknown VM. */
static int
open_log(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1], path[PATH_MAX];
	struct nq_error err = { 0 };
	json_t *vm = NULL;
	const char *hv;
	int fd;

	if (!api_param_uuid(req, 0, "id", id, resp))
		return -EINVAL;
	if (vms_get(AGENT(req), id, &vm, &err) < 0) {
		http_reply_error(resp, &err);
		return -ENOENT;
	}
	hv = json_string_value(json_object_get(vm, "hypervisor"));
	snprintf(path, sizeof path, "%s/vms/%s/%s", AGENT(req)->cfg.state_dir, id,
		hv && !strcmp(hv, "firecracker") ? "console.log" : "serial.log");
	json_decref(vm);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno != ENOENT) {
		http_reply_errorf(resp, "io_error", NULL,
			"cannot read the console log: %s", strerror(errno));
		return -EIO;
	}
	return fd < 0 ? open("/dev/null", O_RDONLY | O_CLOEXEC) : fd;
}

/* A number query parameter in [min, max] (def when absent); a 422 naming
 * it otherwise. */
static bool
query_num(struct http_request *req, struct http_response *resp, const char *name,
	unsigned long long min, unsigned long long max, unsigned long long def,
	unsigned long long *ret)
{
	const char *v = http_query(req, name);
	char *end = NULL;

	*ret = def;
	if (!v)
		return true;
	errno = 0;
	*ret = strtoull(v, &end, 10);
	if (!*v || *end || errno || v[0] == '-' || *ret < min || *ret > max) {
		http_reply_errorf(resp, "out_of_range", name,
			"%s must be a whole number from %llu to %llu", name, min, max);
		return false;
	}
	return true;
}

/* n bytes of fd from off as the reply body; headers X-Offset (where the
 * bytes start) and X-Next-Offset. */
static void
reply_bytes(struct http_response *resp, int fd, off_t off, size_t n)
{
	char *b = malloc(n + 1);
	ssize_t got = b ? pread(fd, b, n, off) : -1;

	if (got < 0) {
		free(b);
		http_reply_errorf(resp, "io_error", NULL, "cannot read the console log");
		return;
	}
	free(resp->body);
	resp->status = 200;
	resp->body = b;
	resp->body_len = (size_t)got;
	resp->content_type = "application/octet-stream";
	if (asprintf(&resp->extra_headers, "X-Offset: %lld\nX-Next-Offset: %lld\n",
		    (long long)off, (long long)off + got) < 0)
		resp->extra_headers = NULL;
}

void
api_console_tail(struct http_request *req, struct http_response *resp)
{
	unsigned long long tail;
	struct stat st;
	int fd;

	if (!query_num(req, resp, "tail", 0, TAIL_MAX, TAIL_DEFAULT, &tail))
		return;
	fd = open_log(req, resp);
	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0)
		st.st_size = 0;
	off_t off = st.st_size > (off_t)tail ? st.st_size - (off_t)tail : 0;
	reply_bytes(resp, fd, off, (size_t)(st.st_size - off));
	close(fd);
}

/* Waits (up to wait seconds) until the log holds more than offset bytes;
 * an offset past the end (the log was started again) reads from 0. */
void
api_console_stream(struct http_request *req, struct http_response *resp)
{
	unsigned long long off, wait;
	struct timespec pause = { 0, 100 * 1000 * 1000 };
	struct stat st;
	int fd;

	if (!query_num(req, resp, "offset", 0, (1ULL << 62), 0, &off) ||
		!query_num(req, resp, "wait", 0, STREAM_WAIT_MAX, 0, &wait))
		return;
	fd = open_log(req, resp);
	if (fd < 0)
		return;
	for (unsigned i = 0;; i++) {
		if (fstat(fd, &st) < 0)
			st.st_size = 0;
		/* The agent's shutdown ends the wait, as it ends GET /v1/vms's. */
		if ((unsigned long long)st.st_size != off || i >= wait * 10 ||
			vms_generation_stopping())
			break;
		nanosleep(&pause, NULL);
	}
	if ((unsigned long long)st.st_size < off)
		off = 0;
	size_t n = (size_t)(st.st_size - (off_t)off);
	reply_bytes(resp, fd, (off_t)off, n > STREAM_CHUNK ? STREAM_CHUNK : n);
	close(fd);
}

void
api_console_input(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1], fifo[PATH_MAX];
	struct nq_error err = { 0 };
	json_t *vm = NULL;
	bool fc;
	int r;

	if (!api_param_uuid(req, 0, "id", id, resp))
		return;
	if (vms_get(AGENT(req), id, &vm, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	fc = !strcmp(json_string_value(json_object_get(vm, "hypervisor")) ?: "",
		"firecracker");
	json_decref(vm);
	if (!req->body_len) {
		http_reply_empty(resp, 204);
		return;
	}
	snprintf(fifo, sizeof fifo, "%s/vms/%s/" VMM_CONSOLE_FIFO,
		AGENT(req)->cfg.state_dir, id);
	r = fc ? console_input_fifo(fifo, req->body, req->body_len, INPUT_TIMEOUT_MS)
	       : console_input(id, req->body, req->body_len, INPUT_TIMEOUT_MS);
	if (r == -ENOTCONN)
		http_reply_errorf(resp, "invalid_state", NULL,
			"the VM's serial port is not connected: it is not running");
	else if (r < 0)
		http_reply_errorf(resp, "busy", NULL,
			"the guest did not take its input within %d ms", INPUT_TIMEOUT_MS);
	else
		http_reply_json(resp, 200, json_pack("{s:i}", "written", r));
}

struct disk_stat {
	char path[PATH_MAX + 128];
	long long size, allocated;
};

static int
disk_stat_fn(void *ctx)
{
	struct disk_stat *d = ctx;
	struct stat st;

	if (stat(d->path, &st) < 0)
		return negerrno();
	d->size = (long long)st.st_size;
	d->allocated = (long long)st.st_blocks * 512;
	return 0;
}

/* The disk of the VM as the agent sees it; no lock is held here, and the
 * stat runs under a deadline (a hung share must not hang this GET). */
static json_t *
disk_json(const char *path)
{
	struct disk_stat d = { 0 };
	char key[PATH_MAX + 128], *slash;

	if (!path || !*path || strlen(path) >= sizeof d.path)
		return json_pack("{s:n, s:n, s:n}", "path", "size_bytes",
			"allocated_bytes");
	snprintf(d.path, sizeof d.path, "%s", path);
	snprintf(key, sizeof key, "%s", path);
	slash = strrchr(key, '/');
	if (slash && slash != key)
		*slash = '\0'; /* one worker at most per volume directory */
	if (deadline_run(key, disk_stat_fn, &d, sizeof d, DISK_STAT_TIMEOUT_MS) < 0)
		return json_pack("{s:s, s:n, s:n}", "path", path, "size_bytes",
			"allocated_bytes");
	return json_pack("{s:s, s:I, s:I}", "path", path, "size_bytes", (json_int_t)d.size,
		"allocated_bytes", (json_int_t)d.allocated);
}

void
api_get_vm(struct http_request *req, struct http_response *resp)
{
	char id[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };
	json_t *vm = NULL;

	if (!api_param_uuid(req, 0, "id", id, resp))
		return;
	if (vms_get(AGENT(req), id, &vm, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	json_object_set_new(vm, "disk",
		disk_json(json_string_value(json_object_get(vm, "rootfs"))));
	http_reply_json(resp, 200, vm);
}
