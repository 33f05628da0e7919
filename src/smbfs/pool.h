/* nqrust-smbfs connection pool: file data over several SMB connections.
 *
 * Debian 12's libsmbclient is not thread-safe (no smbc_thread_posix; four
 * threads on four contexts crashed), so parallel connections are
 * processes: conns=N (N >= 2) forks N workers, each owning one SMB
 * context (one TCP connection, one SMB session). The FUSE loop stays in
 * the main process (the high-level libfuse API keeps its node table
 * there); its threads forward READ, WRITE and the flushes of an fsync to
 * an idle worker through a shared-memory slot and a socketpair, and keep
 * every piece of shared state themselves: open handles, the replay
 * journal, loss marks, which workers wrote to which file since its last
 * flush, and the write ranges in flight. docs/architecture.md,
 * "nqrust-smbfs", says why this design and what it measured. */
#pragma once

#include "smbfs/smbops.h"

#include <stdint.h>

#define SMBFS_CONNS_MAX 16
/* The dirty-mask bit of the main process's own connection. */
#define SMBFS_MAIN_BIT (1u << 31)

struct smbfs_opts;

/* Fork o->conns workers (o->conns >= 2) for fs. argv: main's, whose
 * memory the workers overwrite so that their command line names them
 * (nqrust-smbfs-worker), not the mount. 0 or -errno. Call from the
 * thread that lives as long as the mount (workers die with it:
 * PR_SET_PDEATHSIG). */
int smbfs_pool_start(struct smbfs *fs, const struct smbfs_opts *o, int argc, char **argv);

/* Stop and reap the workers; NULL-safe, idempotent. */
void smbfs_pool_stop(struct smbfs *fs);

/* The FUSE operations' pooled paths (pool_io.c). */
int smbfs_pool_read(struct smbfs *fs, struct fuse_file_info *fi, char *buf, size_t size,
	off_t off);
int smbfs_pool_write(struct smbfs *fs, struct fuse_file_info *fi, const char *buf,
	size_t size, off_t off);
/* fsync: flush the file on every worker that wrote to it since its last
 * flush; EIO when acknowledged writes to it were lost. 1 when the main
 * connection must flush it too (no worker wrote, or it did). */
int smbfs_pool_fsync(struct smbfs *fs, const char *path, struct fuse_file_info *fi);
/* A new open file's id (0 without a pool). */
uint64_t smbfs_pool_new_id(struct smbfs *fs);
/* Close the workers' SMB handles of an open file (FUSE FLUSH/RELEASE). */
int smbfs_pool_close(struct smbfs *fs, struct fuse_file_info *fi);

/* A worker's life, in the child (worker.c); never returns. */
struct smbfs_wslot;
_Noreturn void smbfs_worker_main(struct smbfs *main_fs, const struct smbfs_opts *o,
	struct smbfs_wslot *slot, int sock);
