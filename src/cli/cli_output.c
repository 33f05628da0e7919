/* Human-readable tables and JSON output for the nqrust CLI. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void
cli_print_json(json_t *j)
{
	char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	if (s) {
		printf("%s\n", s);
		free(s);
	}
}

void
cli_human_bytes(unsigned long long n, char *buf, size_t sz)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, sz, "%llu B", n);
	else
		snprintf(buf, sz, "%.1f %s", v, units[u]);
}

int
cli_parse_size(const char *s, unsigned long long *ret)
{
	char *end = NULL;
	unsigned long long v, mul = 1;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'K':
		mul = 1ULL << 10;
		break;
	case 'M':
		mul = 1ULL << 20;
		break;
	case 'G':
		mul = 1ULL << 30;
		break;
	case 'T':
		mul = 1ULL << 40;
		break;
	default:
		return -EINVAL;
	}
	if (*end) {
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'B' || *end == 'b')
			end++;
	}
	if (*end || v > ~0ULL / mul)
		return -EINVAL;
	*ret = v * mul;
	return 0;
}

static const char *
str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

static unsigned long long
num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	return json_is_integer(v) && json_integer_value(v) > 0
		       ? (unsigned long long)json_integer_value(v)
		       : 0;
}

/* Total, used (total - available) and available, as the API says them
 * (one meaning for every kind). */
static void
capacity_cols(json_t *b, char *total, char *used, char *avail, size_t sz)
{
	json_t *cap = json_object_get(b, "capacity");

	if (!json_is_object(cap)) {
		snprintf(total, sz, "-");
		snprintf(used, sz, "-");
		snprintf(avail, sz, "-");
		return;
	}
	cli_human_bytes(num(cap, "total_bytes"), total, sz);
	cli_human_bytes(num(cap, "used_bytes"), used, sz);
	cli_human_bytes(num(cap, json_object_get(cap, "available_bytes")
					 ? "available_bytes"
					 : "free_bytes"),
		avail, sz);
}

static void
location(json_t *b, char *buf, size_t sz)
{
	json_t *c = json_object_get(b, "config");

	if (strcmp(str(b, "kind"), "smb") == 0)
		snprintf(buf, sz, "//%s/%s%s%s", str(c, "server"), str(c, "share"),
			*str(c, "subdir") ? "/" : "", str(c, "subdir"));
	else
		snprintf(buf, sz, "%s",
			*str(c, "path") ? str(c, "path") : "(host local root)");
}

void
cli_print_backends(json_t *arr)
{
	size_t i;
	json_t *b;

	printf("%-20s %-36s %-9s %-3s %-11s %10s %10s %10s %4s  %s\n", "NAME", "ID",
		"KIND", "DEF", "STATUS", "TOTAL", "USED", "AVAILABLE", "VOLS", "LOCATION");
	json_array_foreach(arr, i, b) {
		char total[32], used[32], avail[32], loc[600];

		capacity_cols(b, total, used, avail, sizeof total);
		location(b, loc, sizeof loc);
		printf("%-20s %-36s %-9s %-3s %-11s %10s %10s %10s %4llu  %s\n",
			str(b, "name"), str(b, "id"), str(b, "kind"),
			json_is_true(json_object_get(b, "is_default")) ? "*" : "",
			str(b, "status"), total, used, avail, num(b, "volume_count"), loc);
	}
}

void
cli_print_backend(json_t *b)
{
	json_t *c = json_object_get(b, "config"), *v, *se;
	char total[32], used[32], avail[32];
	const char *k;

	capacity_cols(b, total, used, avail, sizeof total);
	printf("id:            %s\n", str(b, "id"));
	printf("name:          %s\n", str(b, "name"));
	printf("kind:          %s\n", str(b, "kind"));
	printf("default:       %s\n",
		json_is_true(json_object_get(b, "is_default")) ? "yes" : "no");
	printf("status:        %s\n", str(b, "status"));
	se = json_object_get(b, "status_error");
	if (json_is_object(se))
		printf("status error:  %s (%s)\n", str(se, "message"), str(se, "code"));
	if (json_is_integer(json_object_get(b, "status_since")))
		printf("status since:  %lld (Unix time)\n",
			(long long)json_integer_value(json_object_get(b, "status_since")));
	printf("capacity:      %s total, %s used, %s available\n", total, used, avail);
	printf("volumes:       %llu\n", num(b, "volume_count"));
	printf("has password:  %s\n",
		json_is_true(json_object_get(b, "has_password")) ? "yes" : "no");
	json_object_foreach(c, k, v) {
		if (json_is_string(v) && *json_string_value(v))
			printf("config.%-7s %s\n", k, json_string_value(v));
	}
}

void
cli_print_volumes(json_t *arr)
{
	size_t i;
	json_t *v;

	printf("%-36s %-36s %10s %10s %-7s %s\n", "ID", "BACKEND", "SIZE", "ALLOC",
		"STATE", "PATH");
	json_array_foreach(arr, i, v) {
		char size[32], alloc[32];

		cli_human_bytes(num(v, "size_bytes"), size, sizeof size);
		/* null: the agent cannot tell (FUSE mount); never show 0. */
		if (json_is_integer(json_object_get(v, "allocated_bytes")))
			cli_human_bytes(num(v, "allocated_bytes"), alloc, sizeof alloc);
		else
			snprintf(alloc, sizeof alloc, "unknown");
		printf("%-36s %-36s %10s %10s %-7s %s\n", str(v, "id"),
			str(v, "backend_id"), size, alloc, str(v, "state"), str(v, "path"));
	}
}
