/* nqrust events: the manager's event log (GET /v1/events), oldest of the
 * page first like a log; -f follows it (polling with after=<last id>).
 *
 *   nqrust events [-f] [--object ID|TYPE:ID] [--action A|PREFIX*]
 *                 [--outcome ok|failed] [--since TIME] [--limit N] [--json]
 *
 * With --json the page is printed as the API returns it (newest first);
 * with -f --json one event per line. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

#define FOLLOW_POLL_MS 1000

static const char events_usage[] =
	"usage: nqrust events [-f|--follow] [--object ID|TYPE:ID] [--action ACTION|PREFIX*]\n"
	"                     [--outcome ok|failed] [--since TIME] [--limit N] [--json]\n"
	"\n"
	"Lists the newest N events (default 50), oldest first; -f then prints\n"
	"new events as they happen. TIME is ms since the epoch or RFC 3339 UTC\n"
	"(2026-01-31T12:00:00Z). --action vm.* matches every VM event.\n";

struct ev_args {
	const char *object, *action, *outcome, *since, *limit;
	bool follow;
};

static int
parse_events_args(struct cli *c, int argc, char **argv, struct ev_args *a)
{
	static const char *const valued[] = { "object", "action", "outcome", "since",
		"limit" };
	const char **slot[] = { &a->object, &a->action, &a->outcome, &a->since, &a->limit };

	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		const char *name = arg[0] == '-' && arg[1] == '-' ? arg + 2 : NULL;
		size_t n = name ? strcspn(name, "=") : 0;
		int k = -1;

		if (!strcmp(arg, "-f") || !strcmp(arg, "--follow")) {
			a->follow = true;
			continue;
		}
		if (!strcmp(arg, "--json")) {
			c->json = true;
			continue;
		}
		for (size_t j = 0; n && j < sizeof valued / sizeof valued[0]; j++)
			if (strlen(valued[j]) == n && !strncmp(name, valued[j], n))
				k = (int)j;
		if (k < 0) {
			fprintf(stderr, "nqrust: unknown argument '%s'\n%s", arg,
				events_usage);
			return -EINVAL;
		}
		if (name[n] == '=')
			*slot[k] = name + n + 1;
		else if (i + 1 < argc)
			*slot[k] = argv[++i];
		else {
			fprintf(stderr, "nqrust: --%s needs a value\n", valued[k]);
			return -EINVAL;
		}
	}
	return 0;
}

/* "&name=<escaped value>" appended to q. */
static int
add_query(char *q, size_t sz, const char *name, const char *v, size_t vlen)
{
	char *e;
	size_t n = strlen(q);
	int r;

	if (!v)
		return 0;
	e = curl_easy_escape(NULL, v, (int)vlen);
	if (!e)
		return -ENOMEM;
	r = snprintf(q + n, sz - n, "&%s=%s", name, e);
	curl_free(e);
	return r < 0 || (size_t)r >= sz - n ? -ENAMETOOLONG : 0;
}

/* The query of a page from the filters (a leading '&' is cut by the
 * caller: the path is "/v1/events?" + q + 1). */
static int
filter_query(const struct ev_args *a, char *q, size_t sz)
{
	const char *colon = a->object ? strchr(a->object, ':') : NULL;
	int r = 0;

	q[0] = '\0';
	if (colon) {
		r = add_query(q, sz, "object_type", a->object, (size_t)(colon - a->object));
		r = r < 0 ? r : add_query(q, sz, "object_id", colon + 1, strlen(colon + 1));
	} else if (a->object) {
		r = add_query(q, sz, "object_id", a->object, strlen(a->object));
	}
	r = r < 0 || !a->action ? r
				: add_query(q, sz, "action", a->action, strlen(a->action));
	r = r < 0 || !a->outcome
		    ? r
		    : add_query(q, sz, "outcome", a->outcome, strlen(a->outcome));
	r = r < 0 || !a->since ? r : add_query(q, sz, "since", a->since, strlen(a->since));
	return r;
}

static const char *
s_of(json_t *o, const char *k, const char *dflt)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && *s ? s : dflt;
}

static void
print_event(const struct cli *c, json_t *e)
{
	char when[32] = "?";
	json_int_t ms = json_integer_value(json_object_get(e, "at"));
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (c->json) {
		char *s = json_dumps(e, JSON_COMPACT);
		if (s)
			printf("%s\n", s);
		free(s);
		return;
	}
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%-20s  %-10s  %-24s  %s %s  host=%s  %s%s%s\n", when,
		s_of(e, "actor", "-"), s_of(e, "action", "-"), s_of(e, "object_type", "-"),
		s_of(e, "object_id", "-"), s_of(e, "host_id", "-"), s_of(e, "outcome", "-"),
		json_is_string(json_object_get(e, "cause")) ? "  cause: " : "",
		s_of(e, "cause", ""));
}

/* One GET; prints the error and returns the exit code (> 0) on failure. */
static int
get_page(const struct cli *c, const char *q, json_t **ret)
{
	char path[3072];
	int st;

	snprintf(path, sizeof path, "/v1/events?%s", q[0] == '&' ? q + 1 : q);
	st = cli_request(c, "GET", path, NULL, ret);
	if (st < 0)
		return 1;
	if (st != 200 || !json_is_array(*ret)) {
		int rc = cli_print_error(st, *ret);
		json_decref(*ret);
		*ret = NULL;
		return rc;
	}
	return 0;
}

/* Poll for events after the last one seen, oldest first, for ever. */
static int
follow(const struct cli *c, const char *filters, char last[64])
{
	char q[2600];
	json_t *page = NULL, *e;
	size_t i;
	int rc;

	for (;;) {
		snprintf(q, sizeof q, "%s&limit=1000", filters);
		if (last[0] && add_query(q, sizeof q, "after", last, strlen(last)) < 0)
			return 1;
		rc = get_page(c, q, &page);
		if (rc)
			return rc;
		json_array_foreach(page, i, e) {
			print_event(c, e);
			snprintf(last, 64, "%s", s_of(e, "id", ""));
		}
		json_decref(page);
		fflush(stdout);
		usleep(FOLLOW_POLL_MS * 1000);
	}
}

int
cli_cmd_events(struct cli *c, int argc, char **argv)
{
	struct ev_args a;
	char filters[2048], q[2600], last[64] = "";
	json_t *page = NULL;
	int rc;

	if (parse_events_args(c, argc, argv, &a) < 0)
		return 2;
	if (filter_query(&a, filters, sizeof filters) < 0) {
		fprintf(stderr, "nqrust: filters too long\n");
		return 2;
	}
	snprintf(q, sizeof q, "%s", filters);
	if (add_query(q, sizeof q, "limit", a.limit ? a.limit : "50",
		    strlen(a.limit ? a.limit : "50")) < 0)
		return 2;
	rc = get_page(c, q, &page);
	if (rc)
		return rc;
	if (c->json && !a.follow) {
		cli_print_json(page);
	} else {
		/* Newest first from the API: print oldest first, like a log. */
		for (size_t i = json_array_size(page); i > 0; i--)
			print_event(c, json_array_get(page, i - 1));
	}
	if (json_array_size(page) > 0)
		snprintf(last, sizeof last, "%s", s_of(json_array_get(page, 0), "id", ""));
	json_decref(page);
	fflush(stdout);
	return a.follow ? follow(c, filters, last) : 0;
}
