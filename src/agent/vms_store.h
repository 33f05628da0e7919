/* A VM's record, <state_dir>/vms/<id>.json, written atomically: what to
 * boot and the pid and start time of its VMM, so a restarted agent can
 * adopt it again (vms.c). */
#pragma once

#include "agent/vmm.h"
#include "agent/vms.h"

/* Into dirfd (<state_dir>/vms) as <c->id>.json. */
int vm_record_save(int dirfd, const struct vm_create *c, const struct vmm_proc *p);
/* Read dirfd/file and re-validate it: ids, image names, hypervisor.
 * -EINVAL for a record that does not validate. */
int vm_record_load(int dirfd, const char *file, struct vm_create *ret_c,
	struct vmm_proc *ret_p);
