/* GET /v1/images: the base images on the host (services/images.c). */
#include "manager/manager.h"
#include "manager/routes/routes.h"
#include "manager/services/images.h"

static void
list_images(struct http_request *req, struct http_response *resp)
{
	struct nq_error err = { 0 };
	json_t *out = images_list_json(req->userdata, &err);

	if (!out)
		http_reply_error(resp, &err);
	else
		http_reply_json(resp, 200, out);
}

const struct http_route image_routes[] = {
	{ "GET", "/v1/images", list_images, 0, 0, NULL },
};
const size_t image_routes_count = sizeof image_routes / sizeof image_routes[0];
