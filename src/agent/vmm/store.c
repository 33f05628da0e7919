/* Records of VMs: the on-disk half of vms.c. */
#include "agent/vmm/store.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/record_store.h"

int
vm_record_save(int dirfd, const struct vm_create *c, const struct vmm_proc *p, bool fenced)
{
	return record_store_save(dirfd, c->id,
		json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:I, s:I, s:b}",
			"id", c->id, "backend_kind", c->backend_kind->name, "backend_id",
			c->backend_id, "volume_id", c->volume_id, "vcpus", (int)c->vcpus,
			"memory_mib", (int)c->memory_mib, "kernel", c->kernel, "initrd",
			c->initrd, "boot_args", c->boot_args, "hypervisor", c->hypervisor,
			"pid", (json_int_t)p->pid, "starttime", (json_int_t)p->starttime,
			"fenced", fenced));
}

static void
copy_str(char *dst, size_t sz, json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	snprintf(dst, sz, "%s", s ? s : "");
}

/* Records are written by us, but re-validate: a corrupt file must not
 * make the agent build a path from it. */
int
vm_record_parse(json_t *j, struct vm_create *ret_c, struct vmm_proc *ret_p,
	bool *ret_fenced)
{
	char id[NQ_UUID_LEN + 1];
	struct vm_create c = { 0 };
	struct vmm_proc p = { 0 };
	int r;

	copy_str(id, sizeof id, j, "id");
	r = validate_uuid("id", id, c.id, NULL);
	/* Records from before localfile VMs have no kind: smb. */
	c.backend_kind = storage_kind_find(json_string_value(json_object_get(j,
		"backend_kind")));
	if (!c.backend_kind)
		r = -EINVAL;
	copy_str(id, sizeof id, j, "backend_id");
	if (r >= 0)
		r = c.backend_kind->check_backend_id("backend_id", id, c.backend_id, NULL);
	copy_str(id, sizeof id, j, "volume_id");
	if (r >= 0)
		r = validate_uuid("volume_id", id, c.volume_id, NULL);
	copy_str(c.kernel, sizeof c.kernel, j, "kernel");
	copy_str(c.initrd, sizeof c.initrd, j, "initrd");
	copy_str(c.boot_args, sizeof c.boot_args, j, "boot_args");
	copy_str(c.hypervisor, sizeof c.hypervisor, j, "hypervisor");
	c.vcpus = (unsigned)json_integer_value(json_object_get(j, "vcpus"));
	c.memory_mib = (unsigned)json_integer_value(json_object_get(j, "memory_mib"));
	p.pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	p.starttime = (unsigned long long)json_integer_value(json_object_get(j,
		"starttime"));
	if (r < 0 || validate_image_name("kernel", c.kernel, NULL) < 0 ||
		(c.initrd[0] && validate_image_name("initrd", c.initrd, NULL) < 0) ||
		!vmm_find(c.hypervisor))
		return -EINVAL;
	*ret_c = c;
	*ret_p = p;
	*ret_fenced = json_is_true(json_object_get(j, "fenced"));
	return 0;
}
