/* nqrust-agent: the privileged half. Runs as root on each VM host, in the
 * foreground, logging to stderr; exits cleanly on SIGTERM/SIGINT. */
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/fsutil.h"
#include "common/http_server.h"
#include "common/json_wipe.h"
#include "common/log.h"
#include "agent/storage/leases.h"
#include "agent/agent.h"
#include "agent/identity.h"
#include "agent/tls.h"
#include "agent/storage/localdirs.h"
#include "agent/mounts/mounts.h"
#include "agent/smb/mount.h"
#include "agent/vmm/console.h"
#include "agent/vmm/vms.h"

static int
open_dir(const char *path, mode_t mode, int *ret)
{
	int r = fs_mkdir_p(path, mode), fd;

	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return negerrno();
	*ret = fd;
	return 0;
}

static int
read_token(const char *path, char **ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	char buf[512];
	struct stat st;
	ssize_t n;

	if (fd < 0)
		return negerrno();
	if (fstat(fd, &st) < 0)
		return negerrno();
	if (st.st_mode & 077) {
		log_error("token file must not be readable by group or others path=%s",
			path);
		return -EPERM;
	}
	n = read(fd, buf, sizeof buf - 1);
	if (n <= 0)
		return n < 0 ? negerrno() : -EINVAL;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (strlen(buf) < 16) {
		explicit_bzero(buf, sizeof buf);
		log_error("token file holds fewer than 16 characters path=%s", path);
		return -EINVAL;
	}
	*ret = strdup(buf);
	explicit_bzero(buf, sizeof buf);
	return *ret ? 0 : -ENOMEM;
}

static bool
token_matches(const char *want, const char *got)
{
	size_t lw = strlen(want), lg = strlen(got);
	unsigned char diff = (unsigned char)(lw != lg);

	for (size_t i = 0; i < lw; i++)
		diff |= (unsigned char)(want[i] ^ (i < lg ? got[i] : 0));
	return diff == 0;
}

/* Unix socket: the file mode already limits who connects; SO_PEERCRED
 * is checked again so only root, our own uid and the socket group pass.
 * TCP: a bearer token, compared in constant time. */
static int
authorize(struct http_request *req, struct http_response *resp)
{
	struct agent *a = req->userdata;

	if (req->via_unix) {
		if (req->peer_uid == 0 || req->peer_uid == geteuid() ||
			(a->socket_gid != (gid_t)-1 && req->peer_gid == a->socket_gid))
			return 0;
		http_reply_errorf(resp, "forbidden", NULL,
			"peer is not allowed to use the agent");
		return -1;
	}
	const char *h = http_header(req, "Authorization");
	if (a->token && h && !strncmp(h, "Bearer ", 7) && token_matches(a->token, h + 7))
		return 0;
	http_reply_errorf(resp, "unauthorized", NULL, "a valid bearer token is required");
	return -1;
}

static int
split_hostport(const char *s, char *host, size_t hostsz, unsigned *port)
{
	const char *colon = strrchr(s, ':');
	char *end;
	size_t hl;

	if (!colon)
		return -EINVAL;
	hl = (size_t)(colon - s);
	if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']')
		s++, hl -= 2;
	if (hl == 0 || hl >= hostsz)
		return -EINVAL;
	memcpy(host, s, hl);
	host[hl] = '\0';
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || p > 65535)
		return -EINVAL;
	*port = (unsigned)p;
	return 0;
}

/* Options that need more than the config table's checks: the log level,
 * the mount driver, the TCP address, the socket group. Prints its error
 * and returns -EINVAL. */
static int
apply_config(struct agent *a, char *tcp_host, size_t hostsz, unsigned *tcp_port)
{
	enum log_level lvl;

	if (log_level_parse(a->cfg.log_level, &lvl) < 0) {
		fprintf(stderr,
			"nqrust-agent: log_level must be debug, info, warn or error\n");
		return -EINVAL;
	}
	log_set_level(lvl);
	a->driver = !strcmp(a->cfg.mount_driver, "kernel") ? DRIVER_KERNEL
		    : !strcmp(a->cfg.mount_driver, "fuse")
			    ? DRIVER_FUSE
			    : DRIVER_AUTO;
	if (a->cfg.listen_tcp &&
		split_hostport(a->cfg.listen_tcp, tcp_host, hostsz, tcp_port) < 0) {
		fprintf(stderr, "nqrust-agent: listen_tcp must be HOST:PORT\n");
		return -EINVAL;
	}
	if (a->cfg.socket_group && *a->cfg.socket_group) {
		struct group *g = getgrnam(a->cfg.socket_group);
		if (!g) {
			fprintf(stderr, "nqrust-agent: no such group '%s'\n",
				a->cfg.socket_group);
			return -EINVAL;
		}
		a->socket_gid = g->gr_gid;
	}
	return 0;
}

/* The state, credential and image directories, the mount root, and the
 * bearer token. */
static int
open_state(struct agent *a)
{
	int r;

	if ((r = open_dir(a->cfg.cred_dir, 0700, &a->cred_dirfd)) < 0 ||
		(r = open_dir(a->cfg.state_dir, 0700, &a->state_dirfd)) < 0 ||
		(r = open_dir(a->cfg.image_dir, 0755, &a->image_dirfd)) < 0 ||
		(r = fs_mkdir_p(a->cfg.mount_root, 0755)) < 0) {
		log_error("cannot prepare directories err=%s", strerror(-r));
		return r;
	}
	fchmod(a->cred_dirfd, 0700);
	if ((r = agent_identity_load(a)) < 0)
		return r;
	if (a->cfg.token_file && (r = read_token(a->cfg.token_file, &a->token)) < 0) {
		log_error("cannot read token file path=%s err=%s", a->cfg.token_file,
			strerror(-r));
		return r;
	}
	return 0;
}

/* The tables, rebuilt from their records (mounts adopted, VMs adopted),
 * then the reaper and the mount watchdog. */
static int
start_tables(struct agent *a)
{
	int r;

	if ((r = mount_table_new(&smb_mount_ops, &a->mounts)) < 0)
		return r;
	r = mounts_restore(a);
	if (r < 0)
		log_warn("cannot restore mount records err=%s", strerror(-r));
	if ((r = localdirs_new(&a->locals)) < 0)
		return r;
	if ((r = localdirs_restore(a)) < 0) {
		log_error("cannot prepare the local root path=%s err=%s",
			a->cfg.local_root, strerror(-r));
		return r;
	}
	if ((r = vm_table_new(&a->vms)) < 0)
		return r;
	if ((r = leases_new(a, &a->leases)) < 0) {
		log_error("cannot load the agent id path=%s/agent-id err=%s",
			a->cfg.state_dir, strerror(-r));
		return r;
	}
	if ((r = vms_restore(a)) < 0) {
		log_error("cannot restore VM records err=%s", strerror(-r));
		return r;
	}
	if ((r = leases_start(a)) < 0) {
		log_error("cannot start the lease threads err=%s", strerror(-r));
		return r;
	}
	if ((r = console_pump_start()) < 0) {
		log_error("cannot start the console pump err=%s", strerror(-r));
		return r;
	}
	if ((r = vms_reaper_start(a, 500)) < 0) {
		log_error("cannot start the VM reaper err=%s", strerror(-r));
		return r;
	}
	if ((r = mounts_watch_start(a)) < 0) {
		log_error("cannot start the mount watchdog err=%s", strerror(-r));
		return r;
	}
	return 0;
}

/* The TCP listener's TLS pair (given or generated), checked before
 * anything listens; a->tls_fingerprint is set from it. */
static int
prepare_tls(struct agent *a, struct agent_tls *t)
{
	int r;

	if (!a->cfg.listen_tcp)
		return 0;
	if (!http_server_tls_supported()) {
		log_error(
			"the TCP listener needs TLS, but this libmicrohttpd was built without it (MHD_FEATURE_TLS); install one built with GnuTLS");
		return -EPROTONOSUPPORT;
	}
	if ((r = agent_tls_load(a, t)) < 0)
		return r;
	snprintf(a->tls_fingerprint, sizeof a->tls_fingerprint, "%s", t->fingerprint);
	return 0;
}

/* Listen on the unix socket and/or TCP with the one route table. */
static int
start_server(struct agent *a, const char *tcp_host, unsigned tcp_port,
	struct http_server **ret)
{
	const char *unix_path =
		a->cfg.listen_unix && *a->cfg.listen_unix ? a->cfg.listen_unix : NULL;
	struct agent_tls tls = { 0 };
	char sockdir[PATH_MAX];
	size_t nroutes;
	int r;

	if (unix_path) {
		snprintf(sockdir, sizeof sockdir, "%s", unix_path);
		if ((r = fs_mkdir_p(dirname(sockdir), 0755)) < 0) {
			log_error("cannot create socket directory err=%s", strerror(-r));
			return r;
		}
	}
	if ((r = prepare_tls(a, &tls)) < 0)
		return r;
	const struct http_route *routes = agent_routes(&nroutes);
	struct http_server_opts so = {
		.routes = routes,
		.nroutes = nroutes,
		.unix_path = unix_path,
		.unix_mode = 0660,
		.tcp_host = a->cfg.listen_tcp ? tcp_host : NULL,
		.tcp_port = tcp_port,
		.auth = authorize,
		.userdata = a,
		.max_connections = a->cfg.max_connections,
		.header_timeout = a->cfg.header_timeout,
		.per_addr_connections = a->cfg.max_connections_per_address,
		.tls_cert_pem = tls.cert_pem,
		.tls_key_pem = tls.key_pem,
	};
	r = http_server_start(&so, ret);
	agent_tls_release(&tls); /* the server keeps its own copy */
	if (r < 0) {
		log_error("cannot listen err=%s", strerror(-r));
		return r;
	}
	if (unix_path && a->socket_gid != (gid_t)-1 &&
		chown(unix_path, 0, a->socket_gid) < 0)
		log_warn("cannot set the socket's group err=%s", strerror(errno));
	log_info("nqrust-agent listening unix=%s tcp=%s driver=%s mount_root=%s",
		unix_path ? unix_path : "-", a->cfg.listen_tcp ? a->cfg.listen_tcp : "-",
		a->cfg.mount_driver, a->cfg.mount_root);
	if (a->cfg.listen_tcp) {
		unsigned port = http_server_tcp_port(*ret);
		bool v6 = strchr(tcp_host, ':') != NULL;

		log_info("tcp port=%u", port);
		log_info("agent TLS listening address=%s%s%s:%u fingerprint=%s",
			v6 ? "[" : "", tcp_host, v6 ? "]" : "", port, a->tls_fingerprint);
	}
	log_info("agent identity agent_id=%s host_name=%s", a->agent_id, a->host_name);
	return 0;
}

/* Stop what start_tables and start_server started, in order, and free. */
static void
shutdown_agent(struct agent *a, struct http_server *srv)
{
	/* The watchdog first: it stops between two mounts, while the HTTP
	 * server below waits for the requests in flight. */
	if (a->mounts)
		mounts_watch_request_stop(a);
	vms_generation_stop(); /* long polls answer now */
	http_server_stop(srv);
	vms_reaper_stop();
	console_pump_stop();
	leases_stop(a);
	if (a->mounts)
		mounts_watch_stop(a);
	vm_table_free(a->vms);
	leases_free(a->leases);
	mount_table_free(a->mounts);
	localdirs_free(a->locals);
	if (a->token) {
		explicit_bzero(a->token, strlen(a->token));
		free(a->token);
	}
	closep(&a->cred_dirfd);
	closep(&a->image_dirfd);
	closep(&a->state_dirfd);
	agent_config_release(&a->cfg);
}

int
main(int argc, char **argv)
{
	struct agent a = { .cred_dirfd = -1,
		.image_dirfd = -1,
		.state_dirfd = -1,
		.socket_gid = (gid_t)-1 };
	struct nq_error err = { 0 };
	struct http_server *srv = NULL;
	char tcp_host[256] = "";
	unsigned tcp_port = 0;
	sigset_t sigs;
	int r, sig = 0, rc = 1;

	json_wipe_install(); /* before any jansson allocation */
	r = agent_config_load(&a.cfg, argc, argv, &err);
	if (r != 0) {
		if (r < 0)
			fprintf(stderr, "nqrust-agent: %s\n",
				err.message[0] ? err.message : strerror(-r));
		agent_config_release(&a.cfg);
		return r == 1 ? 0 : 2;
	}
	if (apply_config(&a, tcp_host, sizeof tcp_host, &tcp_port) < 0)
		goto out;
	umask(022);
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	/* Block before any thread starts so only sigwait sees them. */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	if (open_state(&a) < 0 || start_tables(&a) < 0 ||
		start_server(&a, tcp_host, tcp_port, &srv) < 0)
		goto out;

	while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP)
		log_info("SIGHUP ignored; restart the agent to reload its configuration");
	log_info("shutting down signal=%d; mounts stay in place for the next start", sig);
	rc = 0;
out:
	shutdown_agent(&a, srv);
	return rc;
}
