#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/validate.h"
#include "agent/agent.h"

static int
check_abs_path(const char *name, const char *v, struct nq_error *err)
{
	if (v[0] != '/')
		return nq_error_set(err, "invalid_field", name,
			"%s must be an absolute path", name);
	return validate_path_under(name, v, "/", err);
}

static int
check_driver(const char *name, const char *v, struct nq_error *err)
{
	if (strcmp(v, "auto") && strcmp(v, "kernel") && strcmp(v, "fuse"))
		return nq_error_set(err, "invalid_field", name,
			"%s must be auto, kernel or fuse", name);
	return 0;
}

static int
check_hypervisor(const char *name, const char *v, struct nq_error *err)
{
	if (strcmp(v, "auto") && strcmp(v, "firecracker") && strcmp(v, "qemu"))
		return nq_error_set(err, "invalid_field", name,
			"%s must be auto, firecracker or qemu", name);
	return 0;
}

/* clang-format off: it cannot lay out a macro whose body is an initializer. */
#define E(n, t, ck, h) { #n, t, offsetof(struct agent_config, n), 0, h, ck }
/* clang-format on */
static const struct config_entry table[] = {
	E(listen_unix, CFG_STRING, NULL, "unix socket path (default /run/nqrust/agent.sock)"),
	E(listen_tcp, CFG_STRING, NULL, "HOST:PORT for TCP (needs --token-file)"),
	E(token_file, CFG_STRING, check_abs_path, "file holding the TCP bearer token (0600)"),
	E(cred_dir, CFG_STRING, check_abs_path, "credential store (default /etc/nqrust/storage-creds)"),
	E(mount_root, CFG_STRING, check_abs_path, "allowed root of every mount base (default /var/lib/nqrust)"),
	E(local_root, CFG_STRING, check_abs_path, "allowed root of localfile backend directories (default <mount-root>/local)"),
	E(image_dir, CFG_STRING, check_abs_path, "base images (default /var/lib/nqrust/images)"),
	E(state_dir, CFG_STRING, check_abs_path, "agent state (default /var/lib/nqrust/agent)"),
	E(mount_driver, CFG_STRING, check_driver, "auto|kernel|fuse (default auto)"),
	E(probe_timeout, CFG_UINT, NULL, "deadline in seconds for mount, probe, statvfs (default 30)"),
	E(mount_check_interval, CFG_UINT, NULL, "seconds between health checks of each mount; 0 turns the watchdog off (default 2)"),
	E(mount_cifs_path, CFG_STRING, check_abs_path, "mount.cifs program (default /sbin/mount.cifs)"),
	E(smbfs_path, CFG_STRING, check_abs_path, "nqrust-smbfs program (default: beside the agent)"),
	E(umount_path, CFG_STRING, check_abs_path, "umount program (default /bin/umount)"),
	E(log_level, CFG_STRING, NULL, "debug|info|warn|error (default info)"),
	E(socket_group, CFG_STRING, NULL, "group allowed to use the unix socket (default: root only)"),
	E(firecracker_path, CFG_STRING, check_abs_path, "firecracker program (default /usr/bin/firecracker)"),
	E(qemu_path, CFG_STRING, check_abs_path, "qemu program (default /usr/bin/qemu-system-x86_64)"),
	E(hypervisor, CFG_STRING, check_hypervisor, "auto|firecracker|qemu (default auto: firecracker when installed)"),
	E(qemu_kvm, CFG_BOOL, NULL, "run QEMU guests with KVM instead of TCG (default false)"),
	E(vm_stop_timeout, CFG_UINT, NULL, "seconds a VM gets to shut down before it is killed (default 15)"),
	E(header_timeout, CFG_UINT, NULL, "seconds a client has to send a complete request, 1..30 (default 15)"),
	E(max_connections, CFG_UINT, NULL, "HTTP connections per listener, 16..65536 (default 1024)"),
	E(max_connections_per_address, CFG_UINT, NULL,
		"TCP connections per client address; idle ones are evicted first (default 32)"),
};
#undef E

static int
set_default(char **field, const char *v)
{
	if (*field)
		return 0;
	*field = strdup(v);
	return *field ? 0 : -ENOMEM;
}

/* nqrust-smbfs is installed beside nqrust-agent. */
static int
default_smbfs_path(char **field)
{
	char self[4096], *slash;
	ssize_t n;

	if (*field)
		return 0;
	n = readlink("/proc/self/exe", self, sizeof self - 32);
	if (n <= 0)
		return set_default(field, "/usr/lib/nqrust/nqrust-smbfs");
	self[n] = '\0';
	slash = strrchr(self, '/');
	snprintf(slash + 1, sizeof self - (size_t)(slash + 1 - self), "nqrust-smbfs");
	return set_default(field, self);
}

int
agent_config_load(struct agent_config *c, int argc, char **argv, struct nq_error *err)
{
	int r;

	c->probe_timeout = 30;
	c->vm_stop_timeout = 15;
	c->header_timeout = 15;
	c->max_connections = 1024;
	c->max_connections_per_address = 32;
	c->mount_check_interval = 2;
	r = config_parse_args(table, ARRAY_SIZE(table), c, argc, argv, err);
	if (r == 1)
		config_usage(table, ARRAY_SIZE(table), "nqrust-agent", stdout);
	if (r != 0)
		return r;
	if (c->probe_timeout < 1 || c->probe_timeout > 600)
		return nq_error_set(err, "invalid_field", "probe_timeout",
			"probe_timeout must be between 1 and 600 seconds");
	if (c->mount_check_interval > 3600)
		return nq_error_set(err, "invalid_field", "mount_check_interval",
			"mount_check_interval must be between 0 (off) and 3600 seconds");
	if (c->vm_stop_timeout < 1 || c->vm_stop_timeout > 600)
		return nq_error_set(err, "invalid_field", "vm_stop_timeout",
			"vm_stop_timeout must be between 1 and 600 seconds");
	if (c->header_timeout < 1 || c->header_timeout > 30)
		return nq_error_set(err, "invalid_field", "header_timeout",
			"header_timeout must be between 1 and 30 seconds");
	if (c->max_connections < 16 || c->max_connections > 65536)
		return nq_error_set(err, "invalid_field", "max_connections",
			"max_connections must be between 16 and 65536");
	if (c->max_connections_per_address < 2 || c->max_connections_per_address > 65536)
		return nq_error_set(err, "invalid_field", "max_connections_per_address",
			"max_connections_per_address must be between 2 and 65536");
	if ((r = set_default(&c->listen_unix, "/run/nqrust/agent.sock")) < 0 ||
	    (r = set_default(&c->cred_dir, "/etc/nqrust/storage-creds")) < 0 ||
	    (r = set_default(&c->mount_root, "/var/lib/nqrust")) < 0 ||
	    (r = set_default(&c->image_dir, "/var/lib/nqrust/images")) < 0 ||
	    (r = set_default(&c->state_dir, "/var/lib/nqrust/agent")) < 0 ||
	    (r = set_default(&c->mount_driver, "auto")) < 0 ||
	    (r = set_default(&c->mount_cifs_path, "/sbin/mount.cifs")) < 0 ||
	    (r = set_default(&c->umount_path, "/bin/umount")) < 0 ||
	    (r = set_default(&c->log_level, "info")) < 0 ||
	    (r = set_default(&c->firecracker_path, "/usr/bin/firecracker")) < 0 ||
	    (r = set_default(&c->qemu_path, "/usr/bin/qemu-system-x86_64")) < 0 ||
	    (r = set_default(&c->hypervisor, "auto")) < 0 ||
	    (r = default_smbfs_path(&c->smbfs_path)) < 0)
		return r;
	if (!c->local_root) {
		char buf[PATH_MAX];
		if ((size_t)snprintf(buf, sizeof buf, "%s/local",
			    strcmp(c->mount_root, "/") ? c->mount_root : "") >= sizeof buf)
			return nq_error_set(err, "invalid_field", "mount_root", "mount_root is too long");
		if ((r = set_default(&c->local_root, buf)) < 0)
			return r;
	}
	if (c->listen_tcp && !c->token_file)
		return nq_error_set(err, "invalid_field", "token_file",
			"listen_tcp requires token_file: TCP clients must present a bearer token");
	return 0;
}

void
agent_config_release(struct agent_config *c)
{
	config_release(table, ARRAY_SIZE(table), c);
}

int
agent_default_mount_base(const struct agent *a, char *buf, size_t bufsz)
{
	int n = snprintf(buf, bufsz, "%s/smb",
		strcmp(a->cfg.mount_root, "/") ? a->cfg.mount_root : "");
	return n < 0 || (size_t)n >= bufsz ? -ENAMETOOLONG : 0;
}
