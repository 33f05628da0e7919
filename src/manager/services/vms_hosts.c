/* The agent of a VM's host (vms_internal.h). */
#include <string.h>

#include "manager/manager.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/vms_internal.h"

int
vms_env(struct manager *m, const struct vm_row *vm, struct backend_env *ret,
	struct nq_error *err)
{
	return hosts_env(m, vm->has_host && vm->host_id[0] ? vm->host_id : HOST_LOCAL_ID,
		ret, err);
}

int
vms_env_by_id(struct manager *m, const char *vm_id, struct backend_env *ret,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct vm_row vm;
	int r = vms_fetch(m, vm_id, &rows, &vm);

	if (r < 0)
		return nq_error_setr(err, r, r == -ENOENT ? "not_found" : "internal_error",
			NULL, "no VM with id %.64s", vm_id);
	return vms_env(m, &vm, ret, err);
}
