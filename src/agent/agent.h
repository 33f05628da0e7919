/* The agent's process-wide context. One instance, created by main.c and
 * passed to every route handler as userdata. */
#pragma once

#include <stdbool.h>

#include <sys/types.h>

#include "common/nq_error.h"

struct http_route;

enum mount_driver { DRIVER_AUTO, DRIVER_KERNEL, DRIVER_FUSE };

struct agent_config {
	char *listen_unix; /* socket path, "" for none */
	char *listen_tcp;  /* "HOST:PORT" or NULL */
	char *token_file;  /* bearer token for TCP, 0600 */
	char *cred_dir;
	char *mount_root; /* allowed root of every mount base */
	char *local_root; /* allowed root of localfile backend dirs */
	char *image_dir;
	char *state_dir;
	char *mount_driver;            /* auto|kernel|fuse */
	unsigned probe_timeout;        /* seconds */
	unsigned mount_check_interval; /* seconds between health checks, 0 off */
	char *mount_cifs_path;
	char *smbfs_path;
	char *umount_path;
	char *log_level;
	char *socket_group;     /* group allowed on the unix socket */
	char *firecracker_path; /* VMM programs (vmm/) */
	char *qemu_path;
	char *hypervisor;         /* auto|firecracker|qemu (default auto) */
	bool qemu_kvm;            /* QEMU: -accel kvm (default tcg) */
	unsigned vm_stop_timeout; /* seconds from a graceful stop to the kill */
	unsigned header_timeout;  /* seconds for a client to send its request */
	unsigned max_connections; /* HTTP connections per listener */
	unsigned max_connections_per_address; /* TCP clients */
	char *host_name;        /* this host's name in leases (default hostname) */
	unsigned lease_seconds; /* volume leases on shared kinds (3..300) */
};

struct mount_table;
struct vm_table;
struct localdirs;
struct leases;

struct agent {
	struct agent_config cfg;
	enum mount_driver driver;
	int cred_dirfd; /* O_DIRECTORY fds, opened once at start */
	int image_dirfd;
	int state_dirfd;
	char *token;      /* owned; wiped at exit */
	gid_t socket_gid; /* (gid_t)-1 when unset */
	struct mount_table *mounts;
	struct localdirs *locals;
	struct vm_table *vms;
	struct leases *leases; /* storage/leases.h */
};

/* Fill defaults, parse --config and flags; returns 1 for --help. */
int agent_config_load(struct agent_config *c, int argc, char **argv, struct nq_error *err);
void agent_config_release(struct agent_config *c);
/* Default mount base: <mount_root>/smb into buf. */
int agent_default_mount_base(const struct agent *a, char *buf, size_t bufsz);
/* The one static route table (api/routes.c), for main.c. */
const struct http_route *agent_routes(size_t *ret_n);
