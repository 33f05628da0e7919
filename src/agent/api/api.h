/* The agent's API handlers (one file per concern) and what they share.
 * The one route table that binds them to methods and paths is routes.c.
 * Every handler parses strictly (unknown keys are errors), validates with
 * the allow-lists in validate.c, and only then calls into the modules,
 * which build every path themselves from the validated ids. */
#pragma once

#include <stdbool.h>

#include "common/http_server.h"
#include "agent/agent.h"
#include "agent/storage/kind.h"

#define AGENT(req) ((struct agent *)(req)->userdata)
/* The storage kind a volume or capacity route serves (its route data). */
#define KIND(req) ((const struct storage_kind_ops *)(req)->route_data)

/* GET of a collection: the route data is a list_fn, whose new reference
 * is the 200 body. */
typedef json_t *(*list_fn)(struct agent *a);
void api_list(struct http_request *req, struct http_response *resp);
/* 204 when r >= 0, else the error err holds. */
void api_reply_done(struct http_response *resp, int r, const struct nq_error *err);

/* Path parameter i as a UUID into out; false after replying 400. */
bool api_param_uuid(struct http_request *req, unsigned i, const char *field,
	char out[NQ_UUID_LEN + 1], struct http_response *resp);

/* credentials.c */
void api_put_credentials(struct http_request *req, struct http_response *resp);
void api_delete_credentials(struct http_request *req, struct http_response *resp);
/* mounts.c */
void api_post_mount(struct http_request *req, struct http_response *resp);
void api_delete_mount(struct http_request *req, struct http_response *resp);
/* localfile.c */
void api_put_local_backend(struct http_request *req, struct http_response *resp);
void api_delete_local_backend(struct http_request *req, struct http_response *resp);
/* volumes.c: route data is the storage kind */
void api_post_volume(struct http_request *req, struct http_response *resp);
void api_list_volumes(struct http_request *req, struct http_response *resp);
void api_delete_volume(struct http_request *req, struct http_response *resp);
void api_get_capacity(struct http_request *req, struct http_response *resp);
void api_list_images(struct http_request *req, struct http_response *resp);
/* snapshots.c: the copy and revert routes' data is the storage kind */
void api_copy_volume(struct http_request *req, struct http_response *resp);
void api_revert_volume(struct http_request *req, struct http_response *resp);
void api_vm_snapshot(struct http_request *req, struct http_response *resp);
/* cache.c: a backend's base cache; route data is the storage kind */
void api_get_cache(struct http_request *req, struct http_response *resp);
void api_delete_cache(struct http_request *req, struct http_response *resp);
/* vms.c: api_vm_action's route data is the vms_* function to call */
void api_post_vm(struct http_request *req, struct http_response *resp);
void api_vm_action(struct http_request *req, struct http_response *resp);
void api_vm_shutdown(struct http_request *req, struct http_response *resp);
void api_delete_vm(struct http_request *req, struct http_response *resp);
void api_list_vms(struct http_request *req, struct http_response *resp);
/* console.c */
void api_console_tail(struct http_request *req, struct http_response *resp);
void api_console_stream(struct http_request *req, struct http_response *resp);
void api_console_input(struct http_request *req, struct http_response *resp);
void api_get_vm(struct http_request *req, struct http_response *resp);
void api_get_host(struct http_request *req, struct http_response *resp);
