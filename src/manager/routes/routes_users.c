/* /v1/users: user accounts and roles, for administrators only (the
 * ROUTE_ADMIN flag; mgr_auth_hook refuses everyone else with 403). */
#include <string.h>

#include "common/json_util.h"
#include "manager/auth/users.h"
#include "manager/manager.h"
#include "manager/routes/routes.h"

static void
list_users(struct http_request *req, struct http_response *resp)
{
	json_t *arr = users_list_json(req->userdata);

	if (!arr)
		http_reply_errorf(resp, "internal_error", NULL, "database error");
	else
		http_reply_json(resp, 200, arr);
}

static void
create_user(struct http_request *req, struct http_response *resp)
{
	static const char *const keys[] = { "username", "password", "role", NULL };
	struct nq_error err = { 0 };
	struct user_new u = { 0 };
	json_t *body = NULL, *user = NULL;

	if (http_parse_object(req, keys, &body, &err) < 0 ||
		json_req_string(body, "username", &u.username, &err) < 0 ||
		json_req_string(body, "password", &u.password, &err) < 0 ||
		json_get_string(body, "role", &u.role, &err) < 0 ||
		users_create(req->userdata, &u, &user, &err) < 0) {
		json_decref(body); /* wiped on free (json_wipe) */
		http_reply_error(resp, &err);
		return;
	}
	json_decref(body);
	http_reply_json(resp, 201, user);
}

static void
delete_user(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };

	if (users_delete(req->userdata, req->params[0], &err) < 0)
		http_reply_error(resp, &err);
	else
		http_reply_empty(resp, 204);
}

const struct http_route user_routes[] = {
	{ "GET", "/v1/users", list_users, ROUTE_ADMIN, 0, NULL },
	{ "POST", "/v1/users", create_user, ROUTE_ADMIN | ROUTE_SENSITIVE, 8192, NULL },
	{ "DELETE", "/v1/users/{id}", delete_user, ROUTE_ADMIN, 0, NULL },
};
const size_t user_routes_count = ARRAY_SIZE(user_routes);
