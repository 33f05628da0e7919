/* nqrust host …: enroll, list, drain and remove VM hosts (DESIGN.md §5).
 *
 * The agent's bearer token is a secret: it is read from a file or stdin
 * (--token-file FILE, --token-file -), never taken from argv, and wiped
 * after the request. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/macro.h"

#define TOKEN_FILE_MAX 4096

static const char host_usage[] =
	"usage: nqrust host add --name NAME --url https://HOST:PORT --token-file FILE\n"
	"                       [--fingerprint SHA256]\n"
	"       nqrust host list [--json]\n"
	"       nqrust host get NAME|ID\n"
	"       nqrust host drain NAME|ID [--off]\n"
	"       nqrust host remove NAME|ID\n"
	"\n"
	"The agent's token is read from FILE (or stdin with --token-file - or\n"
	"--token-stdin), never from the command line. Without --fingerprint the\n"
	"manager trusts the agent's certificate on first use and records it:\n"
	"compare the printed fingerprint with the one in the agent's log.\n";

struct host_args {
	const char *name, *url, *token_file, *fingerprint, *positional;
	bool off;
};

static const char *
s_of(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static long long
i_of(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

/* --opt VALUE or --opt=VALUE, exact names only; values are never echoed. */
static int
parse_host_args(struct cli *c, int argc, char **argv, struct host_args *a)
{
	static const char *const valued[] = { "name", "url", "token-file", "fingerprint" };

	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;
		size_t n;
		int k = -1;

		if (strncmp(arg, "--", 2) != 0) {
			if (a->positional) {
				cli_errf("usage", NULL, "unexpected argument '%s'", arg);
				return -EINVAL;
			}
			a->positional = arg;
			continue;
		}
		n = strcspn(arg + 2, "=");
		if (n == 11 && !strncmp(arg + 2, "token-stdin", 11) && !arg[13]) {
			a->token_file = "-";
			continue;
		}
		if (n == 5 && !strncmp(arg + 2, "token", 5)) {
			cli_errf("usage", NULL,
				"the agent token is never taken from the "
				"command line: use --token-file FILE "
				"(or --token-file - for stdin)");
			return -EINVAL;
		}
		if (n == 4 && !strncmp(arg + 2, "json", 4) && !arg[6]) {
			c->json = true;
			continue;
		}
		if (n == 3 && !strncmp(arg + 2, "off", 3) && !arg[5]) {
			a->off = true;
			continue;
		}
		for (size_t j = 0; j < ARRAY_SIZE(valued); j++)
			if (strlen(valued[j]) == n && !strncmp(valued[j], arg + 2, n))
				k = (int)j;
		if (k < 0) {
			cli_errf("usage", NULL, "unknown option '--%.*s'", (int)n, arg + 2);
			return -EINVAL;
		}
		if (arg[2 + n] == '=')
			val = arg + 3 + n;
		else if (i + 1 < argc)
			val = argv[++i];
		if (!val || !*val) {
			cli_errf("usage", NULL, "option '--%s' needs a value", valued[k]);
			return -EINVAL;
		}
		const char **slot[] = { &a->name, &a->url, &a->token_file,
			&a->fingerprint };
		*slot[k] = val;
	}
	return 0;
}

/* The token: the whole of FILE (or stdin for "-") without its trailing
 * newline. *ret is owned by the caller (cli_free_secret). */
static int
read_token(const char *file, char **ret)
{
	_cleanup_close_ int fd = -1;
	char *buf = calloc(1, TOKEN_FILE_MAX + 1);
	size_t len = 0;
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	fd = strcmp(file, "-") == 0 ? dup(STDIN_FILENO) : open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int r = -errno;
		cli_errf("bad_token_file", NULL, "cannot open the token file %s: %s", file,
			strerror(errno));
		free(buf);
		return r;
	}
	while (len < TOKEN_FILE_MAX &&
		(n = read(fd, buf + len, TOKEN_FILE_MAX - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			cli_free_secret(buf);
			cli_errf("bad_token_file", NULL, "cannot read the token: %s",
				strerror(errno));
			return -EIO;
		}
		len += (size_t)n;
	}
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		buf[--len] = '\0';
	if (len == 0 || len >= TOKEN_FILE_MAX || strchr(buf, '\n')) {
		cli_free_secret(buf);
		cli_errf("bad_token_file", NULL,
			"%s does not hold a token (one line of 16 to 512 "
			"characters)",
			strcmp(file, "-") == 0 ? "stdin" : file);
		return -EINVAL;
	}
	*ret = buf;
	return 0;
}

static void
print_host(json_t *h)
{
	char fp[32];
	const char *f = s_of(h, "fingerprint");
	size_t n = strlen(f);

	/* Short form as in the web UI, "AB:CD:EF:01…9A:BC"; `host get` and
	 * --json show it whole. */
	if (n > 30)
		snprintf(fp, sizeof fp, "%.11s…%s", f, f + n - 5);
	else
		snprintf(fp, sizeof fp, "%s", *f ? f : "-");
	printf("%-16s %-36s %-12s %-28s %4lld %6lld/%-6lld %4lld %s\n", s_of(h, "name"),
		s_of(h, "id"), s_of(h, "status"), s_of(h, "agent_url"), i_of(h, "cpus"),
		i_of(h, "memory_free_mib"), i_of(h, "memory_mib"), i_of(h, "vm_count"), fp);
	if (json_is_string(json_object_get(h, "last_error")))
		printf("  last error: %s\n", s_of(h, "last_error"));
}

static void
print_hosts(json_t *arr)
{
	size_t i;
	json_t *h;

	printf("%-16s %-36s %-12s %-28s %4s %13s %4s %s\n", "NAME", "ID", "STATUS",
		"AGENT_URL", "CPUS", "MEM_FREE/MiB", "VMS", "FINGERPRINT");
	if (json_is_object(arr)) {
		print_host(arr);
		return;
	}
	json_array_foreach(arr, i, h)
		print_host(h);
}

/* One call; prints the host(s) or done (JSON as is with --json); one host
 * with its whole fingerprint, and after enrollment (enrolled) what TOFU
 * asks of the operator. */
static int
host_call(const struct cli *c, const char *method, const char *path, json_t *body,
	int want, const char *done, bool enrolled)
{
	json_t *reply = NULL;
	int status = cli_request(c, method, path, body, &reply), rc = 0;

	if (status < 0)
		rc = 1;
	else if (status != want)
		rc = cli_print_error(status, reply);
	else if (c->json && reply)
		cli_print_json(reply);
	else if (reply && !done)
		print_hosts(reply);
	else if (done && !c->json)
		printf("%s\n", done);
	if (rc == 0 && !c->json && json_is_object(reply) && !done)
		printf("Fingerprint (%s): %s\n", s_of(reply, "fingerprint_source"),
			s_of(reply, "fingerprint"));
	if (rc == 0 && !c->json && json_is_object(reply) && enrolled &&
		!strcmp(s_of(reply, "fingerprint_source"), "tofu"))
		printf("Trusted on first use: compare it with the fingerprint in the "
		       "agent's log.\n");
	json_decref(reply);
	return rc;
}

int
cli_resolve_host(const struct cli *c, const char *ref, char *buf, size_t sz)
{
	json_t *list = NULL, *h;
	int status = cli_request(c, "GET", "/v1/hosts", NULL, &list);
	size_t i;

	if (status != 200) {
		if (status >= 100)
			cli_print_error(status, list);
		json_decref(list);
		return -EIO;
	}
	json_array_foreach(list, i, h) {
		if (!strcmp(s_of(h, "id"), ref) || !strcmp(s_of(h, "name"), ref)) {
			snprintf(buf, sz, "%s", s_of(h, "id"));
			json_decref(list);
			return 0;
		}
	}
	json_decref(list);
	cli_errf("not_found", NULL, "no host with id or name '%s'", ref);
	return -ENOENT;
}

static int
host_add(struct cli *c, const struct host_args *a)
{
	char *token = NULL;
	int rc;

	if (!a->name || !a->url || !a->token_file || a->positional) {
		cli_errf("usage", NULL, "host add needs --name, --url and --token-file");
		return 2;
	}
	if (read_token(a->token_file, &token) < 0)
		return 1;
	json_t *body = json_pack("{s:s, s:s, s:s}", "name", a->name, "agent_url", a->url,
		"token", token);
	cli_free_secret(token);
	if (!body)
		return 1;
	if (a->fingerprint)
		json_object_set_new(body, "fingerprint", json_string(a->fingerprint));
	rc = host_call(c, "POST", "/v1/hosts", body, 201, NULL, true);
	json_decref(body); /* json_wipe: the dumped and parsed copies are wiped */
	return rc;
}

int
cli_cmd_host(struct cli *c, const char *sub, int argc, char **argv)
{
	struct host_args a;
	char id[128], path[256];

	if (!strcmp(sub, "--help") || !strcmp(sub, "help")) {
		fputs(host_usage, stdout);
		return 0;
	}
	if (parse_host_args(c, argc, argv, &a) < 0)
		return 2;
	if (!strcmp(sub, "add"))
		return host_add(c, &a);
	if (!strcmp(sub, "list"))
		return host_call(c, "GET", "/v1/hosts", NULL, 200, NULL, false);
	if (strcmp(sub, "drain") && strcmp(sub, "remove") && strcmp(sub, "get")) {
		cli_errf("usage", NULL, "unknown host command '%s'", sub);
		if (!cli_json_errors)
			fputs(host_usage, stderr);
		return 2;
	}
	if (!a.positional) {
		cli_errf("usage", NULL, "host %s needs a NAME or ID", sub);
		return 2;
	}
	if (cli_resolve_host(c, a.positional, id, sizeof id) < 0)
		return 1;
	snprintf(path, sizeof path, "/v1/hosts/%s", id);
	if (!strcmp(sub, "get"))
		return host_call(c, "GET", path, NULL, 200, NULL, false);
	if (!strcmp(sub, "remove"))
		return host_call(c, "DELETE", path, NULL, 204, "Host removed.", false);
	json_t *body = json_pack("{s:b}", "draining", !a.off);
	int rc = host_call(c, "PATCH", path, body, 200, NULL, false);
	json_decref(body);
	return rc;
}
