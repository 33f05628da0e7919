/* GET /v1/events: the persisted event log (services/events.c), newest
 * first; filters object_type, object_id, action (exact, or a prefix such
 * as vm.*), outcome, host_id, since/until (ms since the epoch or RFC 3339
 * UTC); paging with limit (default 100, max 1000) and the cursor before
 * (an event id or a time in ms), whose next value is in X-Next-Cursor;
 * after=<id> lists newer events oldest first (following the log). The
 * number of matching events is in X-Total-Count. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "manager/manager.h"
#include "manager/routes/query.h"
#include "manager/routes/routes.h"
#include "manager/services/events.h"

/* "1764500000000" (ms) or "2026-11-30T13:00:00Z" / "…T13:00:00.250Z". */
static int
parse_time(const char *v, long long *ret_ms)
{
	struct tm tm = { 0 };
	size_t n = strlen(v);
	const char *rest;
	long ms = 0;

	if (n > 0 && n <= 15 && strspn(v, "0123456789") == n) {
		*ret_ms = strtoll(v, NULL, 10);
		return 0;
	}
	rest = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!rest)
		return -EINVAL;
	if (*rest == '.') {
		size_t d = strspn(rest + 1, "0123456789");
		if (d < 1 || d > 9)
			return -EINVAL;
		for (size_t i = 0; i < 3; i++)
			ms = ms * 10 + (i < d ? rest[1 + i] - '0' : 0);
		rest += 1 + d;
	}
	if (strcmp(rest, "Z") != 0)
		return -EINVAL;
	*ret_ms = (long long)timegm(&tm) * 1000 + ms;
	return *ret_ms >= 0 ? 0 : -EINVAL;
}

static int
query_time(const struct http_request *req, const char *name, long long *ret,
	struct nq_error *err)
{
	const char *v = NULL;

	*ret = 0;
	if (query_word(req, name, 40, &v, err) < 0)
		return -EINVAL;
	if (v && parse_time(v, ret) < 0)
		return nq_error_setr(err, -EINVAL, "invalid_field", name,
			"%s must be a time in ms since the epoch or RFC 3339 UTC"
			" (2026-01-31T12:00:00Z)",
			name);
	return 0;
}

/* An action filter: lowercase words joined by dots, optionally ending in
 * '*' (a prefix). */
static int
check_action(const char *a, struct nq_error *err)
{
	size_t n = a ? strlen(a) : 0;
	size_t body = n > 0 && a[n - 1] == '*' ? n - 1 : n;

	if (a && strspn(a, "abcdefghijklmnopqrstuvwxyz0123456789_.") != body)
		return nq_error_setr(err, -EINVAL, "invalid_field", "action",
			"action must be an action like vm.started, or a prefix like vm.*");
	return 0;
}

static int
parse_events_query(struct http_request *req, struct events_query *q, struct nq_error *err)
{
	unsigned long long limit;

	if (query_word(req, "object_type", 32, &q->object_type, err) < 0 ||
		query_word(req, "object_id", EVENT_FIELD_MAX, &q->object_id, err) < 0 ||
		query_word(req, "action", 64, &q->action, err) < 0 ||
		check_action(q->action, err) < 0 ||
		query_word(req, "outcome", 32, &q->outcome, err) < 0 ||
		query_word(req, "host_id", EVENT_FIELD_MAX, &q->host_id, err) < 0 ||
		query_word(req, "before", 64, &q->before, err) < 0 ||
		query_word(req, "after", 64, &q->after, err) < 0 ||
		query_time(req, "since", &q->since_ms, err) < 0 ||
		query_time(req, "until", &q->until_ms, err) < 0 ||
		query_uint(req, "limit", 1, EVENTS_LIMIT_MAX, EVENTS_LIMIT_DEFAULT, &limit,
			err) < 0)
		return -EINVAL;
	if (q->before && q->after)
		return nq_error_setr(err, -EINVAL, "invalid_field", "after",
			"give before or after, not both");
	if (q->since_ms && q->until_ms && q->until_ms < q->since_ms)
		return nq_error_setr(err, -EINVAL, "invalid_field", "until",
			"until is earlier than since");
	q->limit = (unsigned)limit;
	return 0;
}

static void
list_events(struct http_request *req, struct http_response *resp)
{
	struct events_query q = { 0 };
	struct events_page page = { 0 };
	struct nq_error err = { 0 };

	if (parse_events_query(req, &q, &err) < 0 ||
		events_list(req->userdata, &q, &page, &err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	http_reply_json(resp, 200, page.items);
	if (asprintf(&resp->extra_headers, "X-Total-Count: %lld\n%s%s%s", page.total,
		    page.next[0] ? "X-Next-Cursor: " : "", page.next,
		    page.next[0] ? "\n" : "") < 0)
		resp->extra_headers = NULL;
}

const struct http_route event_routes[] = {
	{ "GET", "/v1/events", list_events, 0, 0, NULL },
};
const size_t event_routes_count = sizeof event_routes / sizeof event_routes[0];
