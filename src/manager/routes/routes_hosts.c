/* /v1/hosts: HTTP parsing and replies around services/hosts*.c. */
#include <string.h>

#include "common/json_util.h"
#include "manager/manager.h"
#include "manager/routes/routes.h"
#include "manager/services/hosts.h"

static void
reply_host(struct manager *m, struct http_response *resp, int status, const char *id)
{
	struct nq_error err = { 0 };
	json_t *h = hosts_get_json(m, id, &err);

	if (!h)
		http_reply_error(resp, &err);
	else
		http_reply_json(resp, status, h);
}

static void
list_hosts(struct http_request *req, struct http_response *resp)
{
	json_t *arr = hosts_list_json(req->userdata);

	if (!arr)
		http_reply_errorf(resp, "internal_error", NULL, "database error");
	else
		http_reply_json(resp, 200, arr);
}

static void
get_host(struct http_request *req, struct http_response *resp)
{
	reply_host(req->userdata, resp, 200, req->params[0]);
}

static void
create_host(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "name", "agent_url", "token", "fingerprint",
		NULL };
	struct manager *m = req->userdata;
	struct host_new h = { 0 };
	struct nq_error err = { 0 };
	char id[64];
	json_t *body = NULL;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "name", &h.name, &err) < 0 ||
		json_req_string(body, "agent_url", &h.agent_url, &err) < 0 ||
		json_req_string(body, "token", &h.token, &err) < 0 ||
		json_get_string(body, "fingerprint", &h.fingerprint, &err) < 0 ||
		hosts_enroll(m, &h, id, &err) < 0) {
		json_decref(body); /* wiped on free (json_wipe) */
		http_reply_error(resp, &err);
		return;
	}
	json_decref(body);
	reply_host(m, resp, 201, id);
}

static void
patch_host(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "draining", NULL };
	struct manager *m = req->userdata;
	struct nq_error err = { 0 };
	json_t *body = NULL, *v;

	if (http_parse_object(req, keys, &body, &err) < 0)
		goto fail;
	v = json_object_get(body, "draining");
	if (!json_is_boolean(v)) {
		nq_error_set(&err, "invalid_field", "draining",
			"draining must be true or false");
		goto fail;
	}
	if (hosts_set_draining(m, req->params[0], json_is_true(v), &err) < 0)
		goto fail;
	json_decref(body);
	reply_host(m, resp, 200, req->params[0]);
	return;
fail:
	json_decref(body);
	http_reply_error(resp, &err);
}

static void
delete_host(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };

	if (hosts_delete(req->userdata, req->params[0], &err) < 0)
		http_reply_error(resp, &err);
	else
		http_reply_empty(resp, 204);
}

const struct http_route host_routes[] = {
	{ "GET", "/v1/hosts", list_hosts, 0, 0, NULL },
	{ "POST", "/v1/hosts", create_host, ROUTE_SENSITIVE, 0, NULL },
	{ "GET", "/v1/hosts/{id}", get_host, 0, 0, NULL },
	{ "PATCH", "/v1/hosts/{id}", patch_host, 0, 0, NULL },
	{ "DELETE", "/v1/hosts/{id}", delete_host, 0, 0, NULL },
};
const size_t host_routes_count = sizeof host_routes / sizeof host_routes[0];
