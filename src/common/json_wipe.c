/* See json_wipe.h. */
#include "common/json_wipe.h"

#include <jansson.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

static void (*free_hook)(const void *p, size_t n);

void *
json_wipe_malloc(size_t n)
{
	return malloc(n);
}

void
json_wipe_free(void *p)
{
	size_t n;

	if (!p)
		return;
	n = malloc_usable_size(p);
	explicit_bzero(p, n);
	if (free_hook)
		free_hook(p, n);
	free(p);
}

void
json_wipe_set_hook(void (*hook)(const void *p, size_t n))
{
	free_hook = hook;
}

void
json_wipe_install(void)
{
	json_set_alloc_funcs(json_wipe_malloc, json_wipe_free);
}
