/* /proc/self/mountinfo, parsed. Pure parser plus a reader. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct mountinfo_entry {
	char *mount_point; /* unescaped (\040 → ' ') */
	char *fstype;      /* "cifs", "smb3", "fuse.nqrust-smbfs", … */
	char *source;      /* "//server/share" for ours */
};

/* Parse the text of a mountinfo file. Malformed lines are skipped. The
 * array and its strings are owned by the caller (mountinfo_free). */
int mountinfo_parse(const char *text, struct mountinfo_entry **ret, size_t *ret_n);
int mountinfo_read(struct mountinfo_entry **ret, size_t *ret_n);
void mountinfo_free(struct mountinfo_entry *e, size_t n);
/* The top-most (last) entry mounted at exactly mount_point, or NULL. */
const struct mountinfo_entry *mountinfo_find(const struct mountinfo_entry *e, size_t n,
	const char *mount_point);
/* True for the fstypes our drivers create. */
bool mountinfo_is_smb(const struct mountinfo_entry *e);
/* 1 when /proc/self/mountinfo shows one of our fs types mounted at
 * mount_point (with that source, when source is not NULL), 0 when not,
 * -errno when mountinfo cannot be read. */
int mountinfo_has_smb(const char *mount_point, const char *source);
