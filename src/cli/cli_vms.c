/* nqrust vm … and image …: the VM half of the CLI (DESIGN.md §5). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const char *
s_of(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* The id of the array element whose id or name is ref, into buf. */
static int
resolve(const struct cli *c, const char *list_path, const char *what, const char *ref,
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
	fprintf(stderr, "nqrust: no %s with id or name '%s'\n", what, ref);
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
	fprintf(stderr, "nqrust: unknown image command '%s'\n", sub);
	return 2;
}

static int
parse_uint(const char *opt, const char *s, unsigned long *ret)
{
	char *end;
	unsigned long v = strtoul(s ? s : "", &end, 10);

	if (!s || !*s || *end || v == 0) {
		fprintf(stderr, "nqrust: %s needs a positive number\n", opt);
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
			fprintf(stderr, "nqrust: vm create needs --name and --image\n");
			return 2;
		}
		if ((a->vcpus && parse_uint("--vcpus", a->vcpus, &vcpus) < 0) ||
			(a->memory && parse_uint("--memory", a->memory, &mem) < 0))
			return 2;
		json_t *body = json_pack("{s:s, s:I, s:I, s:s}", "name", a->name, "vcpus",
			(json_int_t)vcpus, "memory_mib", (json_int_t)mem, "image_id",
			a->image);
		if (a->backend) {
			if (resolve(c, "/v1/storage/backends", "backend", a->backend, id,
				    sizeof id) < 0) {
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
	if (strcmp(sub, "start") && strcmp(sub, "stop") && strcmp(sub, "restart") &&
		strcmp(sub, "delete") && strcmp(sub, "get") && strcmp(sub, "migrate")) {
		fprintf(stderr, "nqrust: unknown vm command '%s'\n", sub);
		return 2;
	}
	if (!a->positional) {
		fprintf(stderr, "nqrust: vm %s needs an ID or NAME\n", sub);
		return 2;
	}
	if (!strcmp(sub, "migrate") && !a->to) {
		fprintf(stderr, "nqrust: vm migrate needs --to HOST\n");
		return 2;
	}
	if (resolve(c, "/v1/vms", "VM", a->positional, id, sizeof id) < 0)
		return 1;
	if (!strcmp(sub, "delete")) {
		snprintf(path, sizeof path, "/v1/vms/%s", id);
		return call(c, "DELETE", path, NULL, 204, 0, "VM deleted.");
	}
	if (!strcmp(sub, "get"))
		return cli_vm_get(c, id);
	if (!strcmp(sub, "migrate"))
		return vm_migrate(c, id, a->to);
	snprintf(path, sizeof path, "/v1/vms/%s/%s", id, sub);
	return call(c, "POST", path, NULL, 200, 1, NULL);
}
