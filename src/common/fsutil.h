/* File-system helpers: atomic writes, directory creation, paths confined
 * beneath a directory fd, sparse-aware copy. All return 0 or -errno. */
#pragma once

#include <dirent.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/* Write data to dirfd/name atomically: a temp file created O_EXCL|O_NOFOLLOW
 * with `mode` (umask does not apply), fsync, rename over name, fsync dir. */
int fs_write_atomic(int dirfd, const char *name, const void *data, size_t len, mode_t mode);
/* mkdir -p of an absolute path; each created component gets `mode`. */
int fs_mkdir_p(const char *path, mode_t mode);
/* openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS), with
 * an O_NOFOLLOW openat walk as fallback where openat2 is unavailable. The
 * returned fd is O_CLOEXEC; caller owns it. */
int fs_open_beneath(int dirfd, const char *relpath, int flags, mode_t mode);
/* mkdir -p of relpath beneath dirfd (no symlinks followed); returns an
 * O_DIRECTORY fd of the last component, caller owns it. */
int fs_mkdir_beneath(int dirfd, const char *relpath, mode_t mode);
/* Read a whole small regular file (cap bytes at most, -EFBIG beyond)
 * beneath dirfd; -EINVAL for anything else (a FIFO does not block). *ret is
 * NUL-terminated and owned by the caller. */
int fs_read_file(int dirfd, const char *name, size_t cap, char **ret, size_t *ret_len);

/* A DIR stream over dirfd's directory that does not consume dirfd (it
 * reads through its own O_CLOEXEC descriptor). Caller closedir()s it. */
int fs_opendir(int dirfd, DIR **ret);

struct copy_stats {
	uint64_t bytes_written; /* data bytes that crossed to dst */
	uint64_t extents;       /* data extents found in src */
};
/* Copy only the data extents of src (SEEK_DATA/SEEK_HOLE) to the same
 * offsets in dst, then set dst's size to src's size. Uses copy_file_range
 * where it works and falls back to pread/pwrite with a 1 MiB buffer (EXDEV,
 * EINVAL, EOPNOTSUPP across file systems such as FUSE). dst should be empty. */
int fs_sparse_copy(int src_fd, int dst_fd, struct copy_stats *ret);
