#include <ctype.h>
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

/* v is "auto", a or b; the message names them in that order. */
static int
check_auto_or(const char *name, const char *v, const char *a, const char *b,
	struct nq_error *err)
{
	if (strcmp(v, "auto") && strcmp(v, a) && strcmp(v, b))
		return nq_error_set(err, "invalid_field", name,
			"%s must be auto, %s or %s", name, a, b);
	return 0;
}

static int
check_driver(const char *name, const char *v, struct nq_error *err)
{
	return check_auto_or(name, v, "kernel", "fuse", err);
}

static int
check_hypervisor(const char *name, const char *v, struct nq_error *err)
{
	return check_auto_or(name, v, "firecracker", "qemu", err);
}

static int
check_host_name(const char *name, const char *v, struct nq_error *err)
{
	return agent_validate_host_name(name, v, err);
}

#define E(n, t, ck, d, h)                                                                 \
	{                                                                                 \
		.name = #n, .type = t, .offset = offsetof(struct agent_config, n),        \
		.help = h, .check = ck, .def = d                                          \
	}
#define U(n, lo, hi, d, h)                                                                \
	{                                                                                 \
		.name = #n, .type = CFG_UINT, .offset = offsetof(struct agent_config, n), \
		.help = h, .min = lo, .max = hi, .def = d                                 \
	}
#define PATH(n, d, h) E(n, CFG_STRING, check_abs_path, d, h)
static const struct config_entry table[] = {
	E(listen_unix, CFG_STRING, NULL, "/run/nqrust/agent.sock",
		"unix socket path (default /run/nqrust/agent.sock)"),
	E(listen_tcp, CFG_STRING, NULL, NULL, "HOST:PORT for TCP (needs --token-file)"),
	PATH(token_file, NULL, "file holding the TCP bearer token (0600)"),
	PATH(cred_dir, "/etc/nqrust/storage-creds",
		"credential store (default /etc/nqrust/storage-creds)"),
	PATH(mount_root, "/var/lib/nqrust",
		"allowed root of every mount base (default /var/lib/nqrust)"),
	PATH(local_root, NULL,
		"allowed root of localfile backend directories (default <mount-root>/local)"),
	PATH(image_dir, "/var/lib/nqrust/images",
		"base images (default /var/lib/nqrust/images)"),
	PATH(state_dir, "/var/lib/nqrust/agent",
		"agent state (default /var/lib/nqrust/agent)"),
	E(mount_driver, CFG_STRING, check_driver, "auto", "auto|kernel|fuse (default auto)"),
	U(probe_timeout, 1, 600, "30",
		"deadline in seconds for mount, probe, statvfs (default 30)"),
	U(mount_check_interval, 0, 3600, "2",
		"seconds between health checks of each mount; 0 turns the watchdog off (default 2)"),
	PATH(mount_cifs_path, "/sbin/mount.cifs",
		"mount.cifs program (default /sbin/mount.cifs)"),
	PATH(smbfs_path, NULL, "nqrust-smbfs program (default: beside the agent)"),
	PATH(umount_path, "/bin/umount", "umount program (default /bin/umount)"),
	E(log_level, CFG_STRING, NULL, "info", "debug|info|warn|error (default info)"),
	E(socket_group, CFG_STRING, NULL, NULL,
		"group allowed to use the unix socket (default: root only)"),
	PATH(firecracker_path, "/usr/bin/firecracker",
		"firecracker program (default /usr/bin/firecracker)"),
	PATH(qemu_path, "/usr/bin/qemu-system-x86_64",
		"qemu program (default /usr/bin/qemu-system-x86_64)"),
	E(hypervisor, CFG_STRING, check_hypervisor, "auto",
		"auto|firecracker|qemu (default auto: firecracker when installed)"),
	E(base_cache, CFG_BOOL, NULL, "true",
		"clone volumes on SMB backends on the server from the backend's base cache; false copies every volume from its image through this host (default true)"),
	E(qemu_kvm, CFG_BOOL, NULL, NULL,
		"run QEMU guests with KVM instead of TCG (default false)"),
	U(vm_stop_timeout, 1, 600, "15",
		"seconds a VM gets to shut down before it is killed (default 15)"),
	U(header_timeout, 1, 30, "15",
		"seconds a client has to send a complete request, 1..30 (default 15)"),
	U(max_connections, 16, 65536, "1024",
		"HTTP connections per listener, 16..65536 (default 1024)"),
	U(max_connections_per_address, 2, 65536, "32",
		"TCP connections per client address; idle ones are evicted first (default 32)"),
	PATH(tls_cert, NULL,
		"PEM certificate of the TCP listener (with tls_key; default: a self-signed one generated in <state-dir>/tls)"),
	PATH(tls_key, NULL, "PEM private key of the TCP listener (with tls_cert)"),
	E(host_name, CFG_STRING, check_host_name, NULL,
		"this host's name in GET /v1/host and the generated certificate (default: the system host name)"),
	U(report_memory_mib, 0, 16777216, "0",
		"for tests: report this much memory (MiB) and count VMs against it; 0 reports the real figures (default 0)"),
	U(lease_seconds, 3, 300, "30",
		"lease period in seconds of VMs on shared storage, 3..300 (default 30)"),
};
#undef PATH
#undef U
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

	r = config_defaults(table, ARRAY_SIZE(table), c, err);
	if (r < 0)
		return r;
	r = config_parse_args(table, ARRAY_SIZE(table), c, argc, argv, err);
	if (r == 1)
		config_usage(table, ARRAY_SIZE(table), "nqrust-agent", stdout);
	if (r != 0)
		return r;
	r = default_smbfs_path(&c->smbfs_path);
	if (r < 0)
		return r;
	if (!c->local_root) {
		char buf[PATH_MAX];
		if ((size_t)snprintf(buf, sizeof buf, "%s/local",
			    strcmp(c->mount_root, "/") ? c->mount_root : "") >= sizeof buf)
			return nq_error_set(err, "invalid_field", "mount_root",
				"mount_root is too long");
		if ((r = set_default(&c->local_root, buf)) < 0)
			return r;
	}
	if (!c->tls_cert != !c->tls_key)
		return nq_error_set(err, "invalid_field",
			c->tls_cert ? "tls_key" : "tls_cert",
			"%s is missing: give tls_cert and tls_key together, or neither to use a generated self-signed pair",
			c->tls_cert ? "tls_key" : "tls_cert");
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

int
agent_validate_host_name(const char *field, const char *v, struct nq_error *err)
{
	size_t n = strlen(v);

	if (n == 0 || n > AGENT_HOST_NAME_MAX || !isalnum((unsigned char)v[0]) ||
		strspn(v,
			"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") !=
			n)
		return nq_error_set(err, "invalid_field", field,
			"%s must be 1..%d of A-Z a-z 0-9 . _ - starting with a letter or digit",
			field, AGENT_HOST_NAME_MAX);
	return 0;
}
