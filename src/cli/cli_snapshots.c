/* nqrust vm snapshot create|list|delete, vm revert and vm create
 * --from-snapshot (issue 13): disk snapshots of a VM (DESIGN.md §5). VMs
 * and snapshots are given by id or name. These commands parse their own
 * options, like host …: argv[0] is the vm subcommand. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/macro.h"
#include "cli/cli.h"

struct snap_args {
	const char *pos[3];
	size_t npos;
	const char *name, *to, *from, *vcpus, *memory, *host;
	bool ha;
};

static const char *
s_of(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static int
parse(struct cli *c, int argc, char **argv, struct snap_args *a)
{
	static const char *const valued[] = { "name", "to", "from-snapshot", "vcpus",
		"memory", "host" };

	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *val = NULL;
		size_t n = strcspn(arg + 2, "=");
		int k = -1;

		if (strncmp(arg, "--", 2) != 0) {
			if (a->npos == ARRAY_SIZE(a->pos)) {
				fprintf(stderr, "nqrust: unexpected argument '%s'\n", arg);
				return -EINVAL;
			}
			a->pos[a->npos++] = arg;
			continue;
		}
		if (!strcmp(arg, "--json") || !strcmp(arg, "--ha")) {
			*(arg[2] == 'j' ? &c->json : &a->ha) = true;
			continue;
		}
		for (size_t j = 0; j < ARRAY_SIZE(valued); j++)
			if (strlen(valued[j]) == n && !strncmp(valued[j], arg + 2, n))
				k = (int)j;
		if (k < 0) {
			fprintf(stderr, "nqrust: unknown option '--%.*s'\n", (int)n,
				arg + 2);
			return -EINVAL;
		}
		if (arg[2 + n] == '=')
			val = arg + 3 + n;
		else if (i + 1 < argc)
			val = argv[++i];
		if (!val || !*val) {
			fprintf(stderr, "nqrust: option '--%s' needs a value\n", valued[k]);
			return -EINVAL;
		}
		const char **slot[] = { &a->name, &a->to, &a->from, &a->vcpus, &a->memory,
			&a->host };
		*slot[k] = val;
	}
	return 0;
}

static void
print_snapshots(json_t *arr)
{
	size_t i;
	json_t *v;

	printf("%-36s %-24s %-9s %10s %10s %s\n", "ID", "NAME", "STATE", "SIZE",
		"ALLOCATED", "CREATED");
	json_array_foreach(arr, i, v) {
		char size[32], alloc[32] = "-", when[32] = "-";
		json_t *al = json_object_get(v, "allocated_bytes");
		time_t t = (time_t)json_integer_value(json_object_get(v, "created_at"));
		struct tm tm;

		cli_human_bytes((unsigned long long)json_integer_value(json_object_get(v,
					"size_bytes")),
			size, sizeof size);
		if (json_is_integer(al))
			cli_human_bytes((unsigned long long)json_integer_value(al), alloc,
				sizeof alloc);
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof when, "%Y-%m-%d %H:%M:%SZ", &tm);
		printf("%-36s %-24s %-9s %10s %10s %s\n", s_of(v, "id"), s_of(v, "name"),
			s_of(v, "state"), size, alloc, when);
	}
}

/* One call expecting status want; prints the reply or done. */
static int
call(const struct cli *c, const char *method, const char *path, json_t *body, int want,
	bool list, const char *done)
{
	json_t *reply = NULL;
	int status = cli_request(c, method, path, body, &reply), rc = 0;

	json_decref(body);
	if (status < 0)
		rc = 1;
	else if (status != want)
		rc = cli_print_error(status, reply);
	else if (c->json && reply)
		cli_print_json(reply);
	else if (list && json_is_array(reply))
		print_snapshots(reply);
	else if (list && reply) {
		json_t *one = json_pack("[O]", reply);
		print_snapshots(one);
		json_decref(one);
	} else if (done)
		printf("%s\n", done);
	json_decref(reply);
	return rc;
}

/* vm snapshot create VM --name N | list VM | delete VM SNAP */
static int
snapshot(const struct cli *c, const struct snap_args *a)
{
	const char *op = a->npos ? a->pos[0] : "";
	char vm[128], sid[128], path[320];

	if (strcmp(op, "create") && strcmp(op, "list") && strcmp(op, "delete")) {
		fprintf(stderr, "nqrust: vm snapshot needs create, list or delete\n");
		return 2;
	}
	if (a->npos != (strcmp(op, "delete") ? 2u : 3u)) {
		fprintf(stderr, "nqrust: vm snapshot %s needs %s\n", op,
			strcmp(op, "delete") ? "a VM (ID or NAME)" : "a VM and a SNAPSHOT");
		return 2;
	}
	if (!strcmp(op, "create") && !a->name) {
		fprintf(stderr, "nqrust: vm snapshot create needs --name NAME\n");
		return 2;
	}
	if (cli_resolve(c, "/v1/vms", "VM", a->pos[1], vm, sizeof vm) < 0)
		return 1;
	snprintf(path, sizeof path, "/v1/vms/%s/snapshots", vm);
	if (!strcmp(op, "list"))
		return call(c, "GET", path, NULL, 200, true, NULL);
	if (!strcmp(op, "create"))
		return call(c, "POST", path, json_pack("{s:s}", "name", a->name), 201,
			true, NULL);
	if (cli_resolve(c, path, "snapshot", a->pos[2], sid, sizeof sid) < 0)
		return 1;
	snprintf(path, sizeof path, "/v1/vms/%s/snapshots/%s", vm, sid);
	return call(c, "DELETE", path, NULL, 204, false, "Snapshot deleted.");
}

/* vm revert VM --to SNAP */
static int
revert(const struct cli *c, const struct snap_args *a)
{
	char vm[128], sid[128], path[320];

	if (a->npos != 1 || !a->to) {
		fprintf(stderr, "nqrust: vm revert needs a VM and --to SNAPSHOT\n");
		return 2;
	}
	if (cli_resolve(c, "/v1/vms", "VM", a->pos[0], vm, sizeof vm) < 0)
		return 1;
	snprintf(path, sizeof path, "/v1/vms/%s/snapshots", vm);
	if (cli_resolve(c, path, "snapshot", a->to, sid, sizeof sid) < 0)
		return 1;
	snprintf(path, sizeof path, "/v1/vms/%s/revert", vm);
	return call(c, "POST", path, json_pack("{s:s}", "snapshot_id", sid), 200, false,
		"VM reverted.");
}

/* A snapshot given by id (GET /v1/snapshots/{id}) or as VM/NAME. */
static int
resolve_snapshot(const struct cli *c, const char *ref, char *buf, size_t sz)
{
	char path[320], vm[128];
	const char *slash = strchr(ref, '/');
	json_t *reply = NULL;
	int status;

	if (!slash) {
		snprintf(path, sizeof path, "/v1/snapshots/%s", ref);
		status = cli_request(c, "GET", path, NULL, &reply);
		if (status == 200)
			snprintf(buf, sz, "%s", s_of(reply, "id"));
		else if (status >= 100)
			cli_print_error(status, reply);
		json_decref(reply);
		return status == 200 ? 0 : -1;
	}
	snprintf(vm, sizeof vm, "%.*s", (int)(slash - ref), ref);
	if (cli_resolve(c, "/v1/vms", "VM", vm, vm, sizeof vm) < 0)
		return -1;
	snprintf(path, sizeof path, "/v1/vms/%s/snapshots", vm);
	return cli_resolve(c, path, "snapshot", slash + 1, buf, sz);
}

/* vm create --name N --from-snapshot SNAP [--vcpus N] [--memory MIB] [--host H] [--ha] */
static int
create_from(const struct cli *c, const struct snap_args *a)
{
	char sid[128], host[128];
	long vcpus = a->vcpus ? strtol(a->vcpus, NULL, 10) : 1;
	long mem = a->memory ? strtol(a->memory, NULL, 10) : 256;
	json_t *body;

	if (!a->name || a->npos || vcpus <= 0 || mem <= 0) {
		fprintf(stderr, "nqrust: vm create --from-snapshot needs --name, and "
				"positive --vcpus and --memory\n");
		return 2;
	}
	if (resolve_snapshot(c, a->from, sid, sizeof sid) < 0 ||
		(a->host && cli_resolve_host(c, a->host, host, sizeof host) < 0))
		return 1;
	body = json_pack("{s:s, s:I, s:I, s:s}", "name", a->name, "vcpus",
		(json_int_t)vcpus, "memory_mib", (json_int_t)mem, "source_snapshot_id",
		sid);
	if (body && a->host)
		json_object_set_new(body, "host_id", json_string(host));
	if (body && a->ha)
		json_object_set_new(body, "ha", json_true());
	return call(c, "POST", "/v1/vms", body, 201, false,
		"VM created from the snapshot.");
}

bool
cli_is_snapshot_cmd(const char *sub, int argc, char **argv)
{
	if (!strcmp(sub, "snapshot") || !strcmp(sub, "revert"))
		return true;
	for (int i = 1; !strcmp(sub, "create") && i < argc; i++)
		if (!strncmp(argv[i], "--from-snapshot", 15))
			return true;
	return false;
}

int
cli_cmd_snapshot(struct cli *c, const char *sub, int argc, char **argv)
{
	struct snap_args a;

	if (parse(c, argc, argv, &a) < 0)
		return 2;
	if (!strcmp(sub, "snapshot"))
		return snapshot(c, &a);
	if (!strcmp(sub, "revert"))
		return revert(c, &a);
	return create_from(c, &a);
}
