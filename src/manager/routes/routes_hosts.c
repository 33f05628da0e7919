/* GET /v1/hosts: the VM hosts (services/hosts.c). */
#include "manager/manager.h"
#include "manager/routes/routes.h"
#include "manager/services/hosts.h"

static void
list_hosts(struct http_request *req, struct http_response *resp)
{
	json_t *arr = hosts_list_json(req->userdata);

	if (!arr)
		http_reply_errorf(resp, "internal_error", NULL, "database error");
	else
		http_reply_json(resp, 200, arr);
}

const struct http_route host_routes[] = {
	{ "GET", "/v1/hosts", list_hosts, 0, 0, NULL },
};
const size_t host_routes_count = sizeof host_routes / sizeof host_routes[0];
