/* See vm_exits.h. */
#include "manager/services/vm_exits.h"

#include <pthread.h>
#include <string.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static json_t *exits; /* VM id -> last_exit object */

/* Only the documented keys, with their types: the agent is trusted for
 * facts, but what we show stays in the contract's shape. */
static json_t *
sanitize(json_t *e)
{
	json_t *code = json_object_get(e, "code"), *sig = json_object_get(e, "signal");
	json_t *reason = json_object_get(e, "reason"), *at = json_object_get(e, "at");

	if (!json_is_object(e) || !json_is_string(reason))
		return NULL;
	return json_pack("{s:o, s:o, s:s%, s:b, s:o}", "code",
		json_is_integer(code) ? json_copy(code) : json_null(), "signal",
		json_is_integer(sig) ? json_copy(sig) : json_null(), "reason",
		json_string_value(reason),
		json_string_length(reason) > 200 ? (size_t)200 : json_string_length(reason),
		"requested", json_is_true(json_object_get(e, "requested")), "at",
		json_is_integer(at) ? json_copy(at) : json_null());
}

void
vm_exits_update(json_t *agent_vms)
{
	json_t *fresh = json_object(), *v;
	size_t i;

	if (!fresh || !json_is_array(agent_vms)) {
		json_decref(fresh);
		return;
	}
	/* Rebuilt from the whole list: a VM the agent forgot is dropped. */
	json_array_foreach(agent_vms, i, v) {
		const char *id = json_string_value(json_object_get(v, "id"));
		json_t *e = sanitize(json_object_get(v, "last_exit"));
		if (id && e)
			json_object_set_new(fresh, id, e);
		else
			json_decref(e);
	}
	pthread_mutex_lock(&lock);
	json_decref(exits);
	exits = fresh;
	pthread_mutex_unlock(&lock);
}

json_t *
vm_exits_get(const char *id)
{
	json_t *e;

	pthread_mutex_lock(&lock);
	e = exits && id ? json_object_get(exits, id) : NULL;
	e = e ? json_deep_copy(e) : json_null();
	pthread_mutex_unlock(&lock);
	return e;
}
