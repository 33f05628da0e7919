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

/* How fs_sparse_copy moved the data, best first. */
enum copy_method {
	COPY_METHOD_CLONE = 1,  /* FICLONE of the whole file: reflink locally,
				 * SMB2 DUPLICATE_EXTENTS on kernel cifs */
	COPY_METHOD_SERVER = 2, /* copy_file_range over the data extents: in the
				 * kernel or file system, SMB2 COPYCHUNK on
				 * kernel cifs, smbc_splice in nqrust-smbfs */
	COPY_METHOD_CLIENT = 3, /* pread/pwrite through this process */
};

struct copy_stats {
	uint64_t bytes_written;  /* data bytes that reached dst, all methods */
	uint64_t extents;        /* data extents copied (0 after a clone) */
	enum copy_method method; /* the slowest method any byte took */
	uint64_t bytes_cloned;   /* src size shared by FICLONE */
	uint64_t bytes_server;   /* bytes copied by copy_file_range */
	uint64_t bytes_client;   /* bytes copied by pread/pwrite */
	int offload_errno;       /* why copy_file_range was given up (EXDEV,
				 * EOPNOTSUPP, ...); 0 when it was not */
};

/* "clone", "server_copy" or "client_copy"; "none" for anything else. */
const char *copy_method_name(enum copy_method m);

/* Copy src to dst (dst is emptied first; it should be empty): first
 * FICLONE of the whole file; where the file system refuses (EOPNOTSUPP,
 * EXDEV, EINVAL, ...), copy_file_range over the data extents that
 * SEEK_DATA/SEEK_HOLE report; where that is refused too, pread/pwrite
 * with a 1 MiB buffer. Holes stay holes; dst's size is set to src's at
 * the end. Other errors are returned. *ret (may be NULL) says how it went
 * and is written only on success. */
int fs_sparse_copy(int src_fd, int dst_fd, struct copy_stats *ret);

/* A byte range of a file. */
struct fs_range {
	uint64_t off, len;
};

/* The data extents of fd (SEEK_DATA/SEEK_HOLE; the whole file where the
 * file system cannot tell), in order. *ret is malloc'ed, caller frees;
 * NULL with *ret_n 0 for a file without data. */
int fs_data_extents(int fd, struct fs_range **ret, size_t *ret_n);

/* A refused copy_file_range fails the copy with -EOPNOTSUPP instead of
 * going on with pread/pwrite (the caller has a better source). */
#define FS_COPY_OFFLOAD_ONLY 1u

/* Copy ranges of src to the same offsets in dst: copy_file_range, then
 * pread/pwrite where it is refused (unless FS_COPY_OFFLOAD_ONLY). dst is
 * neither emptied nor sized. */
int fs_copy_ranges(int src_fd, int dst_fd, const struct fs_range *ranges, size_t n,
	unsigned flags, struct copy_stats *ret);

/* FICLONE of all of src into dst (a reflink; SMB2 DUPLICATE_EXTENTS on
 * kernel cifs): 1 when done, 0 when the file systems do not offer it for
 * these files (EOPNOTSUPP, EXDEV, EINVAL, ...; dst is then emptied), or
 * -errno. */
int fs_try_clone(int src_fd, int dst_fd);
