/* Base images: the files in the agent's image dir. An image is a
 * rootfs file (*.ext4, *.raw, *.img); the kernel that boots it is
 * <stem>.vmlinuz or <stem>.vmlinux beside it (else a shared vmlinuz or
 * vmlinux), the initrd <stem>.initrd (optional). */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/images.h"

#define IMAGE_CALL_TIMEOUT_MS 10000

static bool
is_rootfs(const char *name)
{
	const char *dot = strrchr(name, '.');

	return dot &&
	       (!strcmp(dot, ".ext4") || !strcmp(dot, ".raw") || !strcmp(dot, ".img"));
}

static json_t *
find_name(json_t *list, const char *name)
{
	size_t i;
	json_t *v;

	json_array_foreach(list, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));
		if (n && !strcmp(n, name))
			return v;
	}
	return NULL;
}

static bool
pick(json_t *list, const char *stem, const char *const *suffixes,
	const char *const *shared, char *buf, size_t sz)
{
	char cand[160];

	for (size_t i = 0; suffixes[i]; i++) {
		snprintf(cand, sizeof cand, "%s%s", stem, suffixes[i]);
		if (find_name(list, cand)) {
			snprintf(buf, sz, "%s", cand);
			return true;
		}
	}
	for (size_t i = 0; shared && shared[i]; i++)
		if (find_name(list, shared[i])) {
			snprintf(buf, sz, "%s", shared[i]);
			return true;
		}
	buf[0] = '\0';
	return false;
}

static void
boot_files(json_t *list, const char *name, struct image_boot *b)
{
	static const char *const ksuf[] = { ".vmlinuz", ".vmlinux", NULL };
	static const char *const kshared[] = { "vmlinuz", "vmlinux", NULL };
	static const char *const isuf[] = { ".initrd", NULL };
	char stem[129];
	char *dot;

	snprintf(stem, sizeof stem, "%s", name);
	dot = strrchr(stem, '.');
	if (dot)
		*dot = '\0';
	pick(list, stem, ksuf, kshared, b->kernel, sizeof b->kernel);
	pick(list, stem, isuf, NULL, b->initrd, sizeof b->initrd);
}

static int
agent_images(struct manager *m, json_t **ret, struct nq_error *err)
{
	struct agent_reply rep = { 0 };
	int r = agent_call(m->env.agent, "GET", "/v1/images", NULL, 0,
		IMAGE_CALL_TIMEOUT_MS, &rep, err);

	if (r >= 0 && !json_is_array(rep.json))
		r = nq_error_setr(err, -EPROTO, "agent_unavailable", NULL,
			"the agent's image list is not an array");
	if (r >= 0)
		*ret = json_incref(rep.json);
	agent_reply_release(&rep);
	return r;
}

int
images_resolve(struct manager *m, const char *image_id, struct image_boot *ret,
	struct nq_error *err)
{
	struct image_boot b = { 0 };
	json_t *list, *img;
	int r = agent_images(m, &list, err);

	if (r < 0)
		return r;
	img = find_name(list, image_id);
	if (!img || !is_rootfs(image_id)) {
		json_decref(list);
		return nq_error_setr(err, -ENOENT, "image_not_found", "image_id",
			"no image %s on the host", image_id);
	}
	b.size_bytes = (unsigned long long)json_integer_value(json_object_get(img,
		"size_bytes"));
	boot_files(list, image_id, &b);
	json_decref(list);
	if (!b.kernel[0])
		return nq_error_setr(err, -ENOENT, "image_not_found", "image_id",
			"no kernel for image %s on the host (expected a .vmlinuz beside it)",
			image_id);
	*ret = b;
	return 0;
}

json_t *
images_list_json(struct manager *m, struct nq_error *err)
{
	json_t *list, *out, *v;
	size_t i;

	if (agent_images(m, &list, err) < 0)
		return NULL;
	out = json_array();
	json_array_foreach(list, i, v) {
		const char *n = json_string_value(json_object_get(v, "name"));
		struct image_boot b = { 0 };
		if (!n || !is_rootfs(n))
			continue;
		boot_files(list, n, &b);
		json_array_append_new(out,
			json_pack("{s:s, s:s, s:O, s:o, s:o}", "id", n, "name", n,
				"size_bytes", json_object_get(v, "size_bytes"), "kernel",
				b.kernel[0] ? json_string(b.kernel) : json_null(), "initrd",
				b.initrd[0] ? json_string(b.initrd) : json_null()));
	}
	json_decref(list);
	if (!out)
		nq_error_set(err, "internal_error", NULL, "out of memory");
	return out;
}
