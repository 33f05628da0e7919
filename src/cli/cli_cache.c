/* nqrust backend cache list|purge BACKEND [ENTRY]: a backend's base cache
 * (GET/DELETE /v1/storage/backends/{id}/cache[/{hash}]). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static const char *
str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "-";
}

static void
print_entries(json_t *arr)
{
	size_t i;
	json_t *e, *v;

	printf("%-64s %-7s %10s %10s %6s %-20s %s\n", "HASH", "STATE", "SIZE", "ALLOC",
		"IN_USE", "LAST_USED", "IMAGES");
	json_array_foreach(arr, i, e) {
		char size[32], alloc[32], images[512] = "";
		size_t j, len = 0;

		cli_human_bytes((unsigned long long)json_integer_value(json_object_get(e,
					"size_bytes")),
			size, sizeof size);
		v = json_object_get(e, "allocated_bytes");
		if (json_is_integer(v))
			cli_human_bytes((unsigned long long)json_integer_value(v), alloc,
				sizeof alloc);
		else
			snprintf(alloc, sizeof alloc, "unknown");
		json_array_foreach(json_object_get(e, "images"), j, v) {
			int n = snprintf(images + len, sizeof images - len, "%s%s",
				j ? "," : "",
				json_string_value(v) ? json_string_value(v) : "");

			if (n < 0 || (size_t)n >= sizeof images - len)
				break;
			len += (size_t)n;
		}
		printf("%-64s %-7s %10s %10s %6lld %-20s %s\n", str(e, "hash"),
			str(e, "state"), size, alloc,
			(long long)json_integer_value(json_object_get(e, "in_use")),
			str(e, "last_used"), images);
	}
}

static void
print_purge(json_t *r)
{
	json_t *kept = json_object_get(r, "kept"), *k;
	size_t i;

	printf("Removed %zu entries, kept %zu.\n",
		json_array_size(json_object_get(r, "removed")), json_array_size(kept));
	json_array_foreach(kept, i, k)
		printf("kept %s: %s\n", str(k, "hash"), str(k, "reason"));
}

int
cli_cmd_backend_cache(struct cli *c, int argc, char **argv)
{
	char id[128], path[512];
	json_t *reply = NULL;
	bool purge;
	int status, rc = 0;

	if (argc < 3 || argc > 4 ||
		(strcmp(argv[1], "list") != 0 && strcmp(argv[1], "purge") != 0) ||
		(argc == 4 && strcmp(argv[1], "purge") != 0)) {
		fprintf(stderr,
			"nqrust: usage: backend cache list BACKEND | backend cache "
			"purge BACKEND [ENTRY]\n");
		return 2;
	}
	purge = strcmp(argv[1], "purge") == 0;
	if (cli_resolve(c, "/v1/storage/backends", "backend", argv[2], id, sizeof id) < 0)
		return 1;
	snprintf(path, sizeof path, "/v1/storage/backends/%s/cache%s%.128s", id,
		argc == 4 ? "/" : "", argc == 4 ? argv[3] : "");
	status = cli_request(c, purge ? "DELETE" : "GET", path, NULL, &reply);
	if (status < 0)
		rc = 1;
	else if (status != 200)
		rc = cli_print_error(status, reply);
	else if (c->json)
		cli_print_json(reply);
	else if (purge)
		print_purge(reply);
	else
		print_entries(reply);
	json_decref(reply);
	return rc;
}
