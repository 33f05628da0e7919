/* Content hashes of base images, for the per-backend base cache
 * (basecache.h). The hash covers the image's size, its data-extent map
 * and the bytes of its data extents (SHA-256, hex): two images with the
 * same content and layout share a cache entry; a changed image gets a new
 * one. It costs one read of the image's data, once: the result is kept in
 * <state-dir>/image-hashes/<image name>, keyed by the image file's
 * (device, inode, size, mtime in ns); any change of those hashes again. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "agent/agent.h"

#define IMAGE_HASH_HEX 64

/* The hash of image `name`, open as fd with stat *st, into ret_hex
 * (IMAGE_HASH_HEX + 1 bytes). 0 or -errno. */
int image_hash(struct agent *a, const char *name, int fd, const struct stat *st,
	char ret_hex[IMAGE_HASH_HEX + 1]);

/* Whether s is a well-formed hash (64 lower-case hex digits). */
bool image_hash_valid(const char *s);

/* Call fn for each image name whose remembered hash is hex (the images a
 * cache entry came from, as far as this host knows). */
void image_hash_names(struct agent *a, const char *hex,
	void (*fn)(const char *name, void *arg), void *arg);
