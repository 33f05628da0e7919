/* nqrust vm … and image …: the VM half of the CLI (DESIGN.md §5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char *
s_of(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

int
cli_resolve(const struct cli *c, const char *list_path, const char *what, const char *ref,
	char *buf, size_t sz)
{
	json_t *list = NULL, *v;
	int status = strcmp(list_path, "/v1/vms") == 0
			     ? cli_get_all(c, list_path, &list)
			     : cli_request(c, "GET", list_path, NULL, &list);
	size_t i;

	if (status != 200) {
		if (status >= 100)
			cli_print_error(status, list);
		json_decref(list);
		return -1;
	}
	json_array_foreach(list, i, v) {
		if (!strcmp(s_of(v, "id"), ref) || !strcmp(s_of(v, "name"), ref)) {
			snprintf(buf, sz, "%s", s_of(v, "id"));
			json_decref(list);
			return 0;
		}
	}
	json_decref(list);
	cli_errf("not_found", NULL, "no %s with id or name '%s'", what, ref);
	return -1;
}

static void
print_vm_row(json_t *v)
{
	json_t *vol = json_object_get(v, "volume");

	const char *host = s_of(v, "host_name");

	printf("%-36s %-16s %-12s %5lld %7lld %-16s %-12s %s\n", s_of(v, "id"),
		s_of(v, "name"), s_of(v, "state"),
		json_integer_value(json_object_get(v, "vcpus")),
		json_integer_value(json_object_get(v, "memory_mib")), s_of(v, "image_id"),
		*host ? host : (*s_of(v, "host_id") ? s_of(v, "host_id") : "-"),
		json_is_object(vol) ? s_of(vol, "path") : "-");
	if (json_is_string(json_object_get(v, "error")))
		printf("  error: %s\n", s_of(v, "error"));
}

static void
print_vms(json_t *arr, bool one)
{
	size_t i;
	json_t *v;

	printf("%-36s %-16s %-12s %5s %7s %-16s %-12s %s\n", "ID", "NAME", "STATE",
		"VCPUS", "MEM_MIB", "IMAGE", "HOST", "ROOTFS");
	if (one) {
		print_vm_row(arr);
		return;
	}
	json_array_foreach(arr, i, v)
		print_vm_row(v);
}

static void
print_images(json_t *arr)
{
	size_t i;
	json_t *v;

	printf("%-32s %10s %-24s %s\n", "ID", "SIZE", "KERNEL", "INITRD");
	json_array_foreach(arr, i, v) {
		json_t *sz = json_object_get(v, "size_bytes");
		char size[32] = "-";
		/* null: an image only on other hosts whose size is not known. */
		if (json_is_integer(sz))
			cli_human_bytes((unsigned long long)json_integer_value(sz), size,
				sizeof size);
		printf("%-32s %10s %-24s %s\n", s_of(v, "id"), size,
			json_is_string(json_object_get(v, "kernel")) ? s_of(v, "kernel") : "-",
			json_is_string(json_object_get(v, "initrd"))
				? s_of(v, "initrd")
				: "-");
	}
}

/* One call; prints the reply (JSON with --json). */
static int
call(const struct cli *c, const char *method, const char *path, json_t *body, int want,
	int kind, const char *done)
{
	json_t *reply = NULL;
	int status = cli_request(c, method, path, body, &reply), rc = 0;

	if (status < 0)
		rc = 1;
	else if (status != want)
		rc = cli_print_error(status, reply);
	else if (c->json && reply)
		cli_print_json(reply);
	else if (kind == 1 && reply)
		print_vms(reply, json_is_object(reply));
	else if (kind == 2 && reply)
		print_images(reply);
	else if (done && !c->json)
		printf("%s\n", done);
	json_decref(reply);
	return rc;
}

int
cli_cmd_image(struct cli *c, const char *sub)
{
	if (!strcmp(sub, "list"))
		return call(c, "GET", "/v1/images", NULL, 200, 2, NULL);
	cli_errf("usage", NULL, "unknown image command '%s'", sub);
	return 2;
}

static int
parse_uint(const char *opt, const char *s, unsigned long *ret)
{
	char *end;
	unsigned long v = strtoul(s ? s : "", &end, 10);

	if (!s || !*s || *end || v == 0) {
		cli_errf("usage", NULL, "%s needs a positive number", opt);
		return -1;
	}
	*ret = v;
	return 0;
}

/* Every page of GET /v1/vms (paged since issue 12). */
static int
vm_list(const struct cli *c)
{
	json_t *all = NULL;
	int status = cli_get_all(c, "/v1/vms", &all), rc = 0;

	if (status < 0)
		rc = 1;
	else if (status != 200)
		rc = cli_print_error(status, all);
	else if (c->json)
		cli_print_json(all);
	else
		print_vms(all, false);
	json_decref(all);
	return rc;
}

/* POST /v1/vms/{id}/migrate {host_id}: cold migration (a running VM is
 * stopped, moved and started again by the manager). */
static int
vm_migrate(const struct cli *c, const char *vm_id, const char *to)
{
	char host[128], path[256];
	int rc;

	if (cli_resolve_host(c, to, host, sizeof host) < 0)
		return 1;
	snprintf(path, sizeof path, "/v1/vms/%s/migrate", vm_id);
	json_t *body = json_pack("{s:s}", "host_id", host);
	rc = call(c, "POST", path, body, 200, 1, NULL);
	json_decref(body);
	return rc;
}

/* Stop is a power-off: on a terminal, ask first (unless --yes). */
static bool
confirm_stop(const struct vm_args *a)
{
	char line[16] = "";

	if (a->yes || !isatty(STDIN_FILENO))
		return true;
	fprintf(stderr, "Power off VM %s now, without letting its guest shut down? [y/N] ",
		a->positional);
	if (!fgets(line, sizeof line, stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

/* vm shutdown [--timeout S] and vm set [--vcpus N] [--memory MIB]. */
static int
vm_shutdown_or_set(const struct cli *c, const char *sub, const char *id,
	const struct vm_args *a)
{
	unsigned long n;
	char path[256];
	json_t *body = json_object();
	int rc;

	if (!strcmp(sub, "shutdown")) {
		if (a->timeout && parse_uint("--timeout", a->timeout, &n) < 0)
			goto usage;
		if (a->timeout)
			json_object_set_new(body, "timeout_seconds",
				json_integer((json_int_t)n));
		snprintf(path, sizeof path, "/v1/vms/%s/shutdown", id);
		rc = call(c, "POST", path, body, 200, 1, NULL);
		json_decref(body);
		return rc;
	}
	if (!a->vcpus && !a->memory) {
		cli_errf("usage", NULL, "vm set needs --vcpus or --memory");
		goto usage;
	}
	if (a->vcpus && parse_uint("--vcpus", a->vcpus, &n) < 0)
		goto usage;
	if (a->vcpus)
		json_object_set_new(body, "vcpus", json_integer((json_int_t)n));
	if (a->memory && parse_uint("--memory", a->memory, &n) < 0)
		goto usage;
	if (a->memory)
		json_object_set_new(body, "memory_mib", json_integer((json_int_t)n));
	snprintf(path, sizeof path, "/v1/vms/%s", id);
	rc = call(c, "PATCH", path, body, 200, 1, NULL);
	json_decref(body);
	return rc;
usage:
	json_decref(body);
	return 2;
}

static bool
is_vm_command(const char *sub)
{
	static const char *const subs[] = { "start", "stop", "restart", "delete", "get",
		"migrate", "shutdown", "set", NULL };

	for (size_t i = 0; subs[i]; i++)
		if (!strcmp(sub, subs[i]))
			return true;
	return false;
}

int
cli_cmd_vm(struct cli *c, const char *sub, const struct vm_args *a)
{
	char id[128], path[256];
	int rc;

	if (!strcmp(sub, "list"))
		return vm_list(c);
	if (!strcmp(sub, "create")) {
		unsigned long vcpus = 1, mem = 256;
		if (!a->name || !a->image) {
			cli_errf("usage", NULL, "vm create needs --name and --image");
			return 2;
		}
		if ((a->vcpus && parse_uint("--vcpus", a->vcpus, &vcpus) < 0) ||
			(a->memory && parse_uint("--memory", a->memory, &mem) < 0))
			return 2;
		json_t *body = json_pack("{s:s, s:I, s:I, s:s}", "name", a->name, "vcpus",
			(json_int_t)vcpus, "memory_mib", (json_int_t)mem, "image_id",
			a->image);
		if (a->backend) {
			if (cli_resolve(c, "/v1/storage/backends", "backend", a->backend,
				    id, sizeof id) < 0) {
				json_decref(body);
				return 1;
			}
			json_object_set_new(body, "storage_backend_id", json_string(id));
		}
		if (a->host && cli_resolve_host(c, a->host, id, sizeof id) < 0) {
			json_decref(body);
			return 1;
		}
		if (a->host)
			json_object_set_new(body, "host_id", json_string(id));
		if (a->ha)
			json_object_set_new(body, "ha", json_true());
		rc = call(c, "POST", "/v1/vms", body, 201, 1, NULL);
		json_decref(body);
		return rc;
	}
	if (!is_vm_command(sub)) {
		cli_errf("usage", NULL, "unknown vm command '%s'", sub);
		return 2;
	}
	if (!a->positional) {
		cli_errf("usage", NULL, "vm %s needs an ID or NAME", sub);
		return 2;
	}
	if (!strcmp(sub, "migrate") && !a->to) {
		cli_errf("usage", NULL, "vm migrate needs --to HOST");
		return 2;
	}
	if (cli_resolve(c, "/v1/vms", "VM", a->positional, id, sizeof id) < 0)
		return 1;
	if (!strcmp(sub, "delete")) {
		snprintf(path, sizeof path, "/v1/vms/%s", id);
		return call(c, "DELETE", path, NULL, 204, 0, "VM deleted.");
	}
	if (!strcmp(sub, "get"))
		return cli_vm_get(c, id);
	if (!strcmp(sub, "migrate"))
		return vm_migrate(c, id, a->to);
	if (!strcmp(sub, "shutdown") || !strcmp(sub, "set"))
		return vm_shutdown_or_set(c, sub, id, a);
	if (!strcmp(sub, "stop") && !confirm_stop(a)) {
		cli_errf("cancelled", NULL, "VM %s was not stopped", a->positional);
		return 1;
	}
	snprintf(path, sizeof path, "/v1/vms/%s/%s", id, sub);
	return call(c, "POST", path, NULL, 200, 1, NULL);
}
