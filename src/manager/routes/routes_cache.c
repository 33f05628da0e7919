/* GET and DELETE /v1/storage/backends/{id}/cache[/{hash}]: a backend's
 * base cache (services/backend_cache.h). Listed in storage_routes. */
#include "manager/manager.h"
#include "manager/routes/routes.h"
#include "manager/services/backend_cache.h"

void
routes_get_backend_cache(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };
	json_t *out = NULL;

	if (backend_cache_list(req->userdata, req->params[0], &out, &err) < 0)
		http_reply_error(resp, &err);
	else
		http_reply_json(resp, 200, out);
}

void
routes_delete_backend_cache(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };
	json_t *out = NULL;

	if (backend_cache_purge(req->userdata, req->params[0],
		    req->nparams > 1 ? req->params[1] : NULL, &out, &err) < 0)
		http_reply_error(resp, &err);
	else
		http_reply_json(resp, 200, out);
}
