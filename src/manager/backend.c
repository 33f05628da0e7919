/* The table of backend kinds: one line per kind. */
#include <string.h>

#include "backend.h"
#include "macro.h"

static const struct backend_ops *const kinds[] = {
	&backend_localfile_ops,
	&backend_smb_ops,
};

const struct backend_ops *
backend_ops_find(const char *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (strcmp(kinds[i]->kind, kind) == 0)
			return kinds[i];
	return NULL;
}
