/* Base images: the files in each host's image dir. An image is a
 * rootfs file (*.ext4, *.raw, *.img); the kernel that boots it is
 * <stem>.vmlinuz or <stem>.vmlinux beside it (else a shared vmlinuz or
 * vmlinux), the initrd <stem>.initrd (optional). */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/hosts_internal.h"
#include "manager/services/images.h"
#include "manager/services/placement.h"

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
list_has(void *ctx, const char *name)
{
	return find_name(ctx, name) != NULL;
}

static bool
names_has(void *ctx, const char *name)
{
	return place_names_has(ctx, name);
}

/* GET /v1/images on host_id's agent. */
static int
agent_images(struct manager *m, const char *host_id, json_t **ret, struct nq_error *err)
{
	struct backend_env env = { 0 };
	struct agent_reply rep = { 0 };
	int r = hosts_env(m, host_id, &env, err);

	if (r < 0)
		return r;
	r = agent_call(env.agent, "GET", "/v1/images", NULL, 0, IMAGE_CALL_TIMEOUT_MS,
		&rep, err);
	hosts_env_release(&env);
	if (r >= 0 && !json_is_array(rep.json))
		r = nq_error_setr(err, -EPROTO, "agent_unavailable", NULL,
			"the agent's image list is not an array");
	if (r >= 0)
		*ret = json_incref(rep.json);
	agent_reply_release(&rep);
	return r;
}

int
images_resolve(struct manager *m, const char *host_id, const char *image_id,
	struct image_boot *ret, struct nq_error *err)
{
	struct image_boot b = { 0 };
	json_t *list, *img;
	int r = agent_images(m, host_id, &list, err);

	if (r < 0)
		return r;
	img = find_name(list, image_id);
	if (!img || !is_rootfs(image_id)) {
		json_decref(list);
		return nq_error_setr(err, -ENOENT, "image_not_found", "image_id",
			"no image %s on host %.64s", image_id, host_id);
	}
	b.size_bytes = (unsigned long long)json_integer_value(json_object_get(img,
		"size_bytes"));
	image_boot_pick(list_has, list, image_id, b.kernel, b.initrd);
	json_decref(list);
	if (!b.kernel[0])
		return nq_error_setr(err, -ENOENT, "image_not_found", "image_id",
			"no kernel for image %s on host %.64s (expected a .vmlinuz beside it)",
			image_id, host_id);
	*ret = b;
	return 0;
}

/* The hosts that can take VMs (reachable, heard from, not draining) and
 * the names in their image dirs, the built-in host first. */
#define IMAGE_HOSTS_SQL                                                                   \
	"SELECT id, images FROM hosts WHERE unreachable_since = 0 AND last_seen > 0"      \
	" AND draining = 0 AND images IS NOT NULL"                                        \
	" ORDER BY CASE WHEN id = 'local' THEN 0 ELSE 1 END, name"

/* Size of image name: the local agent's answer, else what the images
 * table recorded when a VM was made from it, else null. */
static json_t *
image_size(struct manager *m, json_t *local, const char *name)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	json_t *v = local ? find_name(local, name) : NULL;
	const char *p[] = { name };
	long long n;

	if (v)
		return json_incref(json_object_get(v, "size_bytes"));
	if (db_query(m->db, "SELECT size_bytes FROM images WHERE id = $1", 1, p, &rows) < 0 ||
		rows.nrows == 0 || !db_rows_get(&rows, 0, 0) ||
		sscanf(db_rows_get(&rows, 0, 0), "%lld", &n) != 1)
		return json_null();
	return json_integer(n);
}

/* Add host hid's rootfs images to out (name -> image object). */
static void
add_host(struct manager *m, json_t *out, json_t *local, const char *hid, const char *names)
{
	char name[129];

	for (const char *p = names; p && *p;) {
		size_t l = strcspn(p, "\n");
		snprintf(name, sizeof name, "%.*s", (int)(l < 128 ? l : 128), p);
		p += l + (p[l] == '\n');
		if (!is_rootfs(name))
			continue;
		json_t *img = json_object_get(out, name);
		if (!img) {
			struct image_boot b = { 0 };
			image_boot_pick(names_has, (void *)names, name, b.kernel, b.initrd);
			img = json_pack("{s:s, s:s, s:o, s:o, s:o, s:[]}", "id", name,
				"name", name, "size_bytes", image_size(m, local, name),
				"kernel",
				b.kernel[0] ? json_string(b.kernel) : json_null(), "initrd",
				b.initrd[0] ? json_string(b.initrd) : json_null(), "hosts");
			if (!img || json_object_set_new(out, name, img) < 0)
				continue;
		}
		json_array_append_new(json_object_get(img, "hosts"), json_string(hid));
	}
}

json_t *
images_list_json(struct manager *m, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct nq_error lerr = { 0 };
	json_t *local = NULL, *byname, *out, *v;
	const char *k;

	/* The built-in host answers at once over its unix socket: refresh its
	 * list (a file just copied in shows) and take the sizes from it. */
	(void)hosts_heartbeat_one(m, HOST_LOCAL_ID, IMAGE_CALL_TIMEOUT_MS, &lerr);
	if (agent_images(m, HOST_LOCAL_ID, &local, &lerr) < 0)
		local = NULL;
	if (db_query(m->db, IMAGE_HOSTS_SQL, 0, NULL, &rows) < 0) {
		json_decref(local);
		nq_error_set(err, "internal_error", NULL, "database error");
		return NULL;
	}
	byname = json_object();
	for (unsigned i = 0; byname && i < rows.nrows; i++)
		add_host(m, byname, local, db_rows_get(&rows, i, 0),
			db_rows_get(&rows, i, 1));
	json_decref(local);
	out = json_array();
	json_object_foreach(byname, k, v)
		json_array_append(out, v);
	if (!out || !byname) {
		json_decref(out);
		json_decref(byname);
		nq_error_set(err, "internal_error", NULL, "out of memory");
		return NULL;
	}
	json_decref(byname);
	return out;
}
