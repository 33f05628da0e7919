/* A VM's record, <state_dir>/vms/<id>.json, written atomically: what to
 * boot and the pid and start time of its VMM, so a restarted agent can
 * adopt it again (vms.c). */
#pragma once

#include <jansson.h>

#include "agent/vmm/vmm.h"
#include "agent/vmm/vms.h"

/* A record is far smaller than this; bigger files are not read. */
#define VM_RECORD_MAX 8192

/* Into dirfd (<state_dir>/vms) as <c->id>.json. */
int vm_record_save(int dirfd, const struct vm_create *c, const struct vmm_proc *p,
	bool fenced);
/* Re-validate one parsed record (record_store_load_all has read it): ids,
 * image names, hypervisor. -EINVAL for a record that does not validate. */
int vm_record_parse(json_t *j, struct vm_create *ret_c, struct vmm_proc *ret_p,
	bool *ret_fenced);
