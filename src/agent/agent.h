/* The agent's process-wide context. One instance, created by main.c and
 * passed to every route handler as userdata. */
#pragma once

#include <stdbool.h>

#include <sys/types.h>

#include "common/nq_error.h"
#include "common/tls_fp.h"
#include "common/validate.h"

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
	bool base_cache;          /* false: copy every volume from its image */
	unsigned vm_stop_timeout; /* seconds from a graceful stop to the kill */
	unsigned header_timeout;  /* seconds for a client to send its request */
	unsigned max_connections; /* HTTP connections per listener */
	unsigned max_connections_per_address; /* TCP clients */
	char *tls_cert;                       /* PEM files for the TCP listener; both or */
	char *tls_key;              /* neither (then <state_dir>/tls/, generated) */
	char *host_name;            /* NULL: gethostname() */
	unsigned report_memory_mib; /* tests: memory to report instead, 0 real */
	unsigned lease_seconds;     /* lease period of VMs on shared storage */
};

/* A host name: 1..63 of [A-Za-z0-9._-], starting with a letter or digit. */
#define AGENT_HOST_NAME_MAX 63

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
	char agent_id[NQ_UUID_LEN + 1]; /* <state_dir>/agent-id (identity.c) */
	char host_name[AGENT_HOST_NAME_MAX + 1];
	char tls_fingerprint[TLS_FP_SIZE]; /* "" when TCP is off (tls.c) */
	struct leases *leases;             /* storage/leases.h */
};

/* Fill defaults, parse --config and flags; returns 1 for --help. */
int agent_config_load(struct agent_config *c, int argc, char **argv, struct nq_error *err);
void agent_config_release(struct agent_config *c);
/* Host names (--host-name): see AGENT_HOST_NAME_MAX. */
int agent_validate_host_name(const char *field, const char *v, struct nq_error *err);
/* Default mount base: <mount_root>/smb into buf. */
int agent_default_mount_base(const struct agent *a, char *buf, size_t bufsz);
/* The one static route table (api/routes.c), for main.c. */
const struct http_route *agent_routes(size_t *ret_n);
