/* nqrust vm get (the details in words) and nqrust vm console VM: the
 * serial console through the manager's long-poll stream and input routes
 * (GET /v1/vms/{id}/console/stream, POST …/console/input). On a terminal
 * the keys go to the guest raw, Ctrl-] detaches; with --read-only, or when
 * stdin is not a terminal, output only, until the VM stops. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/macro.h"

#define DETACH_KEY 0x1d /* Ctrl-] */
#define STREAM_WAIT_S 10

static const char *
str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static void
print_history(json_t *h)
{
	json_t *e;
	size_t i;

	json_array_foreach(h, i, e) {
		time_t t = (time_t)(json_integer_value(json_object_get(e, "at_ms")) / 1000);
		char when[32];

		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
		printf("  %s  %-16s %s%s%s\n", when, str(e, "action"), str(e, "outcome"),
			*str(e, "cause") ? ": " : "", str(e, "cause"));
	}
}

/* GET /v1/vms/{id} in words (JSON with --json). */
int
cli_vm_get(struct cli *c, const char *id)
{
	json_t *vm = NULL, *d, *x, *h, *b;
	char path[256], size[32], alloc[32];
	int st;

	snprintf(path, sizeof path, "/v1/vms/%s", id);
	st = cli_request(c, "GET", path, NULL, &vm);
	if (st != 200) {
		int rc = st >= 100 ? cli_print_error(st, vm) : 1;
		json_decref(vm);
		return rc;
	}
	if (c->json) {
		cli_print_json(vm);
		json_decref(vm);
		return 0;
	}
	d = json_object_get(vm, "disk");
	x = json_object_get(vm, "last_exit");
	h = json_object_get(vm, "host");
	b = json_object_get(vm, "backend");
	cli_human_bytes(
		(unsigned long long)json_integer_value(json_object_get(d, "size_bytes")),
		size, sizeof size);
	cli_human_bytes((unsigned long long)json_integer_value(json_object_get(d,
				"allocated_bytes")),
		alloc, sizeof alloc);
	printf("Name:       %s\nID:         %s\nState:      %s\n", str(vm, "name"),
		str(vm, "id"), str(vm, "state"));
	printf("vCPUs:      %lld\nMemory:     %lld MiB\nImage:      %s\n",
		json_integer_value(json_object_get(vm, "vcpus")),
		json_integer_value(json_object_get(vm, "memory_mib")), str(vm, "image_id"));
	printf("Host:       %s (%s)\n", h ? str(h, "name") : "-", h ? str(h, "id") : "-");
	printf("Backend:    %s (%s, %s)\n", b ? str(b, "name") : "-",
		b ? str(b, "kind") : "-", str(vm, "storage_backend_id"));
	printf("Disk:       %s\n", d ? str(d, "path") : "-");
	printf("Disk size:  %s (%s allocated)\n", d ? size : "-", d ? alloc : "-");
	printf("Last exit:  %s\n", x ? str(x, "reason") : "-");
	if (*str(vm, "error"))
		printf("Error:      %s\n", str(vm, "error"));
	printf("History (newest first):\n");
	print_history(json_object_get(vm, "state_history"));
	json_decref(vm);
	return 0;
}

struct con {
	const struct cli *c;
	char id[128];
	bool stop; /* atomic */
	long long offset;
	char *auth;
};

static size_t
out_cb(char *p, size_t size, size_t n, void *ud)
{
	(void)ud;
	fwrite(p, size, n, stdout);
	fflush(stdout);
	return size * n;
}

static size_t
hdr_cb(char *p, size_t size, size_t n, void *ud)
{
	struct con *k = ud;

	if (size * n > 14 && !strncasecmp(p, "X-Next-Offset:", 14))
		k->offset = strtoll(p + 14, NULL, 10);
	return size * n;
}

static int
abort_cb(void *ud, curl_off_t a, curl_off_t b, curl_off_t x, curl_off_t y)
{
	(void)a, (void)b, (void)x, (void)y;
	return __atomic_load_n(&((struct con *)ud)->stop, __ATOMIC_ACQUIRE) ? 1 : 0;
}

/* One request of the console: GET streams the body to stdout; POST sends
 * buf. The HTTP status, or -1 when the manager could not be reached. */
static long
con_call(struct con *k, const char *method, const char *path, const void *buf, size_t n)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, k->auth);
	char url[2048];
	long status = -1;
	CURL *h = curl_easy_init();

	snprintf(url, sizeof url, "%s%s", k->c->url, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)STREAM_WAIT_S + 20);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, hdr_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, k);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, abort_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, k);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	if (buf) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, buf);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)n);
	} else {
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, out_cb);
	}
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	for (struct curl_slist *x = hdrs; x; x = x->next) /* the token */
		explicit_bzero(x->data, strlen(x->data));
	curl_slist_free_all(hdrs);
	return status;
}

/* Whether the VM still runs (or is about to). */
static bool
vm_alive(struct con *k)
{
	json_t *vm = NULL;
	char path[256];
	bool alive;

	snprintf(path, sizeof path, "/v1/vms/%s", k->id);
	alive = cli_request(k->c, "GET", path, NULL, &vm) != 200 ||
		!strcmp(str(vm, "state"), "running") ||
		!strcmp(str(vm, "state"), "provisioning");
	json_decref(vm);
	return alive;
}

/* Output: the tail, then the stream. follow_state: end once the VM is no
 * longer running (output-only use). */
static long
output_loop(struct con *k, bool follow_state)
{
	char path[256];
	long st;

	snprintf(path, sizeof path, "/v1/vms/%s/console", k->id);
	st = con_call(k, "GET", path, NULL, 0);
	while (st == 200 && !__atomic_load_n(&k->stop, __ATOMIC_ACQUIRE)) {
		/* A VM that no longer runs: what is left, at once, and done. */
		bool alive = !follow_state || vm_alive(k);
		snprintf(path, sizeof path, "/v1/vms/%s/console/stream?offset=%lld&wait=%d",
			k->id, k->offset, alive ? STREAM_WAIT_S : 0);
		st = con_call(k, "GET", path, NULL, 0);
		if (!alive)
			break;
	}
	return st;
}

static void *
output_thread(void *p)
{
	struct con *k = p;

	(void)output_loop(k, false);
	__atomic_store_n(&k->stop, true, __ATOMIC_RELEASE);
	return NULL;
}

/* Keys from the terminal to the guest until Ctrl-] or the output ends. */
static int
input_loop(struct con *k)
{
	char path[256], buf[512];
	int rc = 0;

	snprintf(path, sizeof path, "/v1/vms/%s/console/input", k->id);
	while (!__atomic_load_n(&k->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t n = read(STDIN_FILENO, buf, sizeof buf);
		if (n <= 0)
			break;
		char *det = memchr(buf, DETACH_KEY, (size_t)n);
		size_t m = det ? (size_t)(det - buf) : (size_t)n;
		long st = m ? con_call(k, "POST", path, buf, m) : 204;
		if (st != 204) {
			fprintf(stderr,
				"\r\nnqrust: the console refused input (HTTP %ld)%s\r\n",
				st, st == 403 ? ": your role may only watch" : "");
			rc = 1;
			break;
		}
		if (det)
			break;
	}
	__atomic_store_n(&k->stop, true, __ATOMIC_RELEASE);
	return rc;
}

static int
attach(struct con *k)
{
	struct termios old, raw;
	pthread_t t;
	int rc;

	if (tcgetattr(STDIN_FILENO, &old) < 0)
		return 1;
	raw = old;
	cfmakeraw(&raw);
	fprintf(stderr, "Connected to the console of %s; Ctrl-] detaches.\r\n", k->id);
	tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	if (pthread_create(&t, NULL, output_thread, k) != 0) {
		tcsetattr(STDIN_FILENO, TCSANOW, &old);
		return 1;
	}
	rc = input_loop(k);
	pthread_join(t, NULL);
	tcsetattr(STDIN_FILENO, TCSANOW, &old);
	fprintf(stderr, "\nDetached.\n");
	return rc;
}

/* The id of the VM whose id or name is ref into buf. */
static int
resolve_vm(const struct cli *c, const char *ref, char *buf, size_t sz)
{
	json_t *list = NULL, *v;
	int st = cli_get_all(c, "/v1/vms", &list);
	size_t i;

	if (st != 200) {
		if (st >= 100)
			cli_print_error(st, list);
		json_decref(list);
		return -1;
	}
	json_array_foreach(list, i, v) {
		if (!strcmp(str(v, "id"), ref) || !strcmp(str(v, "name"), ref)) {
			snprintf(buf, sz, "%s", str(v, "id"));
			json_decref(list);
			return 0;
		}
	}
	json_decref(list);
	cli_errf("not_found", NULL, "no VM with id or name '%s'", ref);
	return -1;
}

/* nqrust vm console VM [--read-only] (argv[0] is "console"). */
int
cli_vm_console(struct cli *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "read-only", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct con k = { .c = c };
	bool ro = false;
	int opt, rc;

	optind = 0; /* glibc: start afresh after the global options' parse */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'r') {
			cli_errf("usage", NULL, "vm console takes VM [--read-only]");
			return 2;
		}
		ro = true;
	}
	if (optind != argc - 1) {
		cli_errf("usage", NULL, "vm console needs one ID or NAME");
		return 2;
	}
	if (!c->token) {
		cli_errf("unauthorized", NULL, "not logged in (nqrust login)");
		return 1;
	}
	if (resolve_vm(c, argv[optind], k.id, sizeof k.id) < 0)
		return 1;
	if (asprintf(&k.auth, "Authorization: Bearer %s", c->token) < 0)
		return 1;
	if (!ro && isatty(STDIN_FILENO))
		rc = attach(&k);
	else
		rc = output_loop(&k, true) == 200 ? 0 : 1;
	explicit_bzero(k.auth, strlen(k.auth));
	free(k.auth);
	return rc;
}
