/* See hostpool.h. Single-host form: the built-in host "local" is the
 * manager's --agent; enrolled hosts come with the hosts service. */
#include <errno.h>
#include <string.h>

#include "manager/services/hostpool.h"
#include "manager/manager.h"
#include "manager/services/hosts.h"

int
hosts_env(struct manager *m, const char *host_id, struct backend_env *ret,
	struct nq_error *err)
{
	if (!host_id || strcmp(host_id, HOST_LOCAL_ID) != 0)
		return nq_error_setr(err, -ENOENT, "not_found", "host_id",
			"no host with id %.64s", host_id ? host_id : "(none)");
	*ret = m->env;
	return 0;
}

void
hosts_env_release(struct backend_env *env)
{
	if (env)
		env->agent = NULL;
}
