/* Base images on the host: a rootfs file (*.ext4, *.raw, *.img) in the
 * agent's image dir and the kernel (and optional initrd) beside it. */
#pragma once

#include <jansson.h>

#include "common/nq_error.h"

struct manager;

/* A base image and the boot files beside it in the agent's image dir. */
struct image_boot {
	char kernel[129];
	char initrd[129]; /* "" when none */
	unsigned long long size_bytes;
};

/* Look image_id up on host_id's agent: err image_not_found when absent. */
int images_resolve(struct manager *m, const char *host_id, const char *image_id,
	struct image_boot *ret, struct nq_error *err);
/* The images as the API lists them: the union over the hosts that can take
 * VMs (from the database), each with the ids of the hosts that have it;
 * new reference, NULL with err set. */
json_t *images_list_json(struct manager *m, struct nq_error *err);
