/* GET /v1/events: the persisted event log (services/events.c), newest
 * first; filters object_type, object_id, action; paging with limit
 * (default 100, max 1000) and before (an event id or a time in ms). */
#include "manager/manager.h"
#include "manager/routes/query.h"
#include "manager/routes/routes.h"
#include "manager/services/events.h"

static void
list_events(struct http_request *req, struct http_response *resp)
{
	struct events_query q = { 0 };
	struct nq_error err = { 0 };
	unsigned long long limit;
	json_t *arr;

	if (query_word(req, "object_type", 32, &q.object_type, &err) < 0 ||
		query_word(req, "object_id", EVENT_FIELD_MAX, &q.object_id, &err) < 0 ||
		query_word(req, "action", 64, &q.action, &err) < 0 ||
		query_word(req, "before", 64, &q.before, &err) < 0 ||
		query_uint(req, "limit", 1, EVENTS_LIMIT_MAX, EVENTS_LIMIT_DEFAULT, &limit,
			&err) < 0) {
		http_reply_error(resp, &err);
		return;
	}
	q.limit = (unsigned)limit;
	arr = events_list_json(req->userdata, &q, &err);
	if (!arr)
		http_reply_error(resp, &err);
	else
		http_reply_json(resp, 200, arr);
}

const struct http_route event_routes[] = {
	{ "GET", "/v1/events", list_events, 0, 0, NULL },
};
const size_t event_routes_count = sizeof event_routes / sizeof event_routes[0];
