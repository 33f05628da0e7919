/* The table of storage kinds (kind.h). */
#include "agent/storage/kind.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/macro.h"

static const struct storage_kind_ops *const kinds[] = {
	&storage_kind_smb,
	&storage_kind_localfile,
};

const struct storage_kind_ops *
storage_kind_find(const char *name)
{
	if (!name || !*name)
		return kinds[0];
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (!strcmp(kinds[i]->name, name))
			return kinds[i];
	return NULL;
}

static char names[128];
static pthread_once_t names_once = PTHREAD_ONCE_INIT;

static void
names_init(void)
{
	size_t len = 0, n = ARRAY_SIZE(kinds);

	for (size_t i = 0; i < n && len < sizeof names; i++) {
		int k = snprintf(names + len, sizeof names - len, "%s%s",
			i == 0       ? ""
			: i + 1 == n ? " or "
				     : ", ",
			kinds[i]->name);
		if (k < 0)
			break;
		len += (size_t)k;
	}
}

const char *
storage_kind_names(void)
{
	pthread_once(&names_once, names_init);
	return names;
}

const struct storage_kind_ops *
storage_kind_at(size_t i)
{
	return i < ARRAY_SIZE(kinds) ? kinds[i] : NULL;
}
