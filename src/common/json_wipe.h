/* A wiping allocator for jansson, for every process that parses
 * passwords (agent, manager, CLI): each block jansson frees (parsed
 * strings, object keys, hashtable buckets, dump buffers) is overwritten
 * with zeros first, so a password parsed from a request body does not
 * linger in freed heap.
 *
 * jansson's free gets no size, so the block size comes from
 * malloc_usable_size() rather than a size header: blocks stay plain
 * malloc blocks, which matters because json_dumps() results are freed
 * with free() by callers and by libmicrohttpd (a header would make each
 * such free() corrupt the heap). */
#pragma once

#include <stddef.h>

/* Install before the first jansson call (first thing in main). */
void json_wipe_install(void);
/* The functions installed; exposed for tests. NULL-safe free. */
void *json_wipe_malloc(size_t n);
void json_wipe_free(void *p);
/* Tests: called with each block after it is wiped, before free(). */
void json_wipe_set_hook(void (*hook)(const void *p, size_t n));
