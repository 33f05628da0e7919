/* nqrust-smbfs: mount one SMB share through FUSE and libsmbclient.
 *
 *   nqrust-smbfs //SERVER/SHARE MOUNTPOINT [-o OPTIONS] [-f]
 *
 * Like mount.cifs, everything is validated and the share is reached before
 * the mount is made; on failure exactly one "mount error(N): …" line (plus
 * an optional hint line, never containing a secret) goes to stderr and the
 * exit status is 32. Without -f the process daemonizes after the mount
 * exists, so the parent's exit 0 means "mounted". */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/credfile.h"
#include "smbfs/opts.h"
#include "smbfs/pool.h"
#include "smbfs/smbops.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#define EXIT_MOUNT_FAILED 32
#ifndef SMBFS_MULTITHREAD
#define SMBFS_MULTITHREAD 1
#endif

#if defined(__SANITIZE_ADDRESS__)
/* libsmbclient's one-time module init keeps a talloc'ed log file name
 * (debug_set_logfile) for the life of the process; not ours to free.
 * And when a directory listing fails midway (the server went away),
 * libsmbclient 4.17's opendir frees the handle but not the entries it
 * had listed ("." and ".."): a dirplus node (24 bytes) and a dir_list
 * node (16 bytes) with their dirents. Our two callers of opendir close
 * every handle they get; the leak is inside the failed call. smbc_statvfs
 * lists the directory the same way inside libsmbclient (cli_list), and
 * leaks the same nodes when the server goes away during it. These
 * suppressions match only with full stacks (fast_unwind_on_malloc=0, as
 * the test fixtures run). */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:debug_set_logfile\nleak:libtalloc.so\n"
	       "leak:op_readdir\nleak:smbfs_probe\nleak:statvfs_attempt\n";
}
#endif

/* Print the contract's failure report and exit 32. hint may be NULL. */
static _Noreturn void __attribute__((format(printf, 2, 3)))
die(int err, const char *hint_fmt, ...)
{
	if (err == ENOKEY)
		fprintf(stderr, "mount error(%d): credentials file not readable\n", err);
	else
		fprintf(stderr, "mount error(%d): %s\n", err, strerror(err));
	if (hint_fmt) {
		va_list ap;

		va_start(ap, hint_fmt);
		vfprintf(stderr, hint_fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fflush(stderr);
	exit(EXIT_MOUNT_FAILED);
}

/* libsmbclient's own messages would break the one-line error contract. */
static void
smb_log_quiet(void *priv, int level, const char *msg)
{
	(void)priv;
	(void)level;
	(void)msg;
}

/* Set once the mount exists: from then on libfuse may speak (in the
 * foreground; a daemon's stderr is /dev/null). */
static volatile bool fuse_log_on;

static void
fuse_log_quiet(enum fuse_log_level level, const char *fmt, va_list ap)
{
	(void)level;
	if (fuse_log_on)
		vfprintf(stderr, fmt, ap);
}

static void
copy_bounded(char *dst, int dstlen, const char *src)
{
	if (dstlen <= 0)
		return;
	snprintf(dst, (size_t)dstlen, "%s", src ? src : "");
}

/* libsmbclient asks for credentials on every (re)connect. */
static void
auth_fn(SMBCCTX *c, const char *srv, const char *shr, char *wg, int wglen, char *un,
	int unlen, char *pw, int pwlen)
{
	const struct smbfs_opts *o = smbc_getOptionUserData(c);

	(void)srv;
	(void)shr;
	if (o->guest) {
		copy_bounded(un, unlen, "");
		copy_bounded(pw, pwlen, "");
		return;
	}
	copy_bounded(un, unlen, o->creds.username);
	copy_bounded(pw, pwlen, o->creds.password);
	if (o->domain)
		copy_bounded(wg, wglen, o->domain);
}

/* A private client configuration: never /etc/samba/smb.conf's name
 * resolution (no NetBIOS broadcasts) or logging. Written to a memfd so no
 * file is left behind. */
static int
private_config(SMBCCTX *ctx)
{
	static const char
		conf[] = "[global]\n"
			 "\tname resolve order = host\n"
			 "\tlog level = 0\n"
			 "\tclient min protocol = SMB2_02\n";
	char path[64];
	int fd, r = 0;

	fd = memfd_create("nqrust-smbfs.conf", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, conf, sizeof(conf) - 1) != (ssize_t)(sizeof(conf) - 1))
		r = -EIO;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (r == 0 && smbc_setConfiguration(ctx, path) < 0)
		r = -EINVAL;
	close(fd);
	return r;
}

int
smbfs_context_new(const struct smbfs_opts *o, SMBCCTX **ret)
{
	SMBCCTX *ctx = smbc_new_context();
	int r;

	if (!ctx)
		return -ENOMEM;
	smbc_setDebug(ctx, 0);
	smbc_setLogCallback(ctx, NULL, smb_log_quiet);
	r = private_config(ctx);
	if (r < 0)
		goto fail;
	smbc_setOptionUserData(ctx, (void *)o);
	smbc_setFunctionAuthDataWithContext(ctx, auth_fn);
	smbc_setOptionUseKerberos(ctx, 0);
	smbc_setOptionFallbackAfterKerberos(ctx, 1);
	smbc_setOptionUseCCache(ctx, 0);
	/* Guest: empty credentials must reach the server. With a password,
	 * never quietly fall back to anonymous. */
	smbc_setOptionNoAutoAnonymousLogin(ctx, o->guest ? 0 : 1);
	smbc_setTimeout(ctx, (int)o->timeout_s * 1000);
	smbc_setPort(ctx, (uint16_t)o->port);
	if (!o->guest)
		smbc_setUser(ctx, o->creds.username);
	if (o->domain)
		smbc_setWorkgroup(ctx, o->domain);
	smbc_setOptionProtocols(ctx, o->proto_min, o->proto_max);
	if (!smbc_init_context(ctx)) {
		r = errno > 0 ? -errno : -EINVAL;
		goto fail;
	}
	*ret = ctx;
	return 0;
fail:
	smbc_free_context(ctx, 0);
	return r;
}

static int
build_base_url(const struct smbfs_opts *o, struct smbfs *fs)
{
	const char *host = o->server;
	size_t hlen = strlen(host);
	size_t cap = 32 + 3 * hlen + 3 * strlen(o->share), len;
	char *url = malloc(cap);
	char port[16];
	int r;

	if (!url)
		return -ENOMEM;
	/* IPv6: libsmbclient's URL parser splits host and port at ':' and
	 * knows no brackets, but it URL-decodes the host afterwards: pass the
	 * bare address with its colons percent-encoded. */
	if (host[0] == '[') {
		host++;
		hlen -= 2;
	}
	memcpy(url, "smb://", 7);
	len = 6;
	r = smbfs_url_encode(url, cap, &len, host, hlen);
	if (r == 0) {
		snprintf(port, sizeof(port), ":%u/", o->port);
		r = smbfs_url_encode_raw(url, cap, &len, port);
	}
	if (r == 0)
		r = smbfs_url_encode(url, cap, &len, o->share, strlen(o->share));
	if (r < 0) {
		free(url);
		return r;
	}
	fs->base_url = url;
	fs->base_len = len;
	return 0;
}

/* Map a libsmbclient errno from the probe to the contract's classes. */
static int
classify(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
		return EACCES;
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return ENOENT;
	case ECONNABORTED:
		/* seen when connecting to a host that never answers SYN
		 * outlasts timeout= */
		return ETIMEDOUT;
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ETIMEDOUT:
	case EHOSTDOWN:
	case ECONNRESET:
		return e;
	case EPROTONOSUPPORT:
	case EPROTO:
	case EOPNOTSUPP:
	case ENOSYS:
		return EOPNOTSUPP;
	default:
		return e > 0 ? e : EIO;
	}
}

#define RAW " (smbclient errno %d)"

static _Noreturn void
die_probe(const struct smbfs_opts *o, int e)
{
	int n = classify(e);

	switch (n) {
	case EACCES:
		die(n, "access to %s denied: check username, password and domain%s" RAW,
			o->unc, o->guest ? " (guest access refused)" : "", e);
	case ENOENT:
		die(n, "share \"%s\" does not exist on %s" RAW, o->share, o->server, e);
	case ECONNREFUSED:
		die(n, "connection to %s port %u refused" RAW, o->server, o->port, e);
	case ETIMEDOUT:
		die(n, "no answer from %s port %u within %u s" RAW, o->server, o->port,
			o->timeout_s, e);
	case EHOSTUNREACH:
	case ENETUNREACH:
		die(n, "%s is unreachable" RAW, o->server, e);
	case EOPNOTSUPP:
		die(n, "SMB protocol negotiation with %s failed (vers=%s)" RAW, o->server,
			o->vers, e);
	default:
		die(n, "could not open %s" RAW, o->unc, e);
	}
}

/* Names that are not IP literals must resolve, or the failure would be
 * misreported by libsmbclient as something else. */
static void
check_resolvable(const struct smbfs_opts *o)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char host[256];
	size_t l = strlen(o->server);
	int r;

	if (o->server[0] == '[') {
		if (l < 3 || l - 2 >= sizeof(host))
			die(EINVAL, "malformed server address");
		memcpy(host, o->server + 1, l - 2);
		host[l - 2] = '\0';
	} else {
		snprintf(host, sizeof(host), "%s", o->server);
	}
	r = getaddrinfo(host, NULL, &hints, &ai);
	if (r != 0)
		die(EHOSTUNREACH, "could not resolve address for %s: %s", host,
			gai_strerror(r));
	freeaddrinfo(ai);
}

static void
add_arg(struct fuse_args *args, const char *a)
{
	if (fuse_opt_add_arg(args, a) < 0)
		die(ENOMEM, NULL);
}

static void
build_fuse_args(const struct smbfs_opts *o, struct fuse_args *args)
{
	char buf[1024];

	add_arg(args, "nqrust-smbfs");
	snprintf(buf, sizeof(buf), "-ofsname=%s,subtype=nqrust-smbfs", o->unc);
	add_arg(args, buf);
	add_arg(args, "-odefault_permissions");
	if (o->view.ro)
		add_arg(args, "-oro");
	if (o->nodev)
		add_arg(args, "-onodev");
	if (o->nosuid)
		add_arg(args, "-onosuid");
	if (o->noexec)
		add_arg(args, "-onoexec");
	snprintf(buf, sizeof(buf), "-oattr_timeout=%g,entry_timeout=%g,negative_timeout=0",
		o->actimeo, o->actimeo);
	add_arg(args, buf);
}

/* Serve until unmounted. Our own libsmbclient calls are serialized by
 * fs->lock; with conns >= 2 file data goes to the worker processes
 * (pool.h), and enough threads stay around to keep them all busy. */
static int
serve(struct fuse *fuse, unsigned conns)
{
	struct fuse_loop_config lc = { .clone_fd = 0, .max_idle_threads = 4 + 2 * conns };

	if (SMBFS_MULTITHREAD)
		return fuse_loop_mt(fuse, &lc);
	return fuse_loop(fuse);
}

/* Options, the credentials file and the mount point, or exit. */
static void
load_options(int argc, char **argv, struct smbfs_opts *o)
{
	struct stat st;
	int r;

	r = smbfs_opts_parse(argc, argv, o);
	if (r < 0)
		die(-r, "%s", o->error[0] ? o->error : "invalid arguments");
	if (o->cred_path) {
		r = credfile_read(o->cred_path, &o->creds);
		if (r < 0)
			die(ENOKEY, "cannot read %s: %s", o->cred_path, strerror(-r));
		r = smbfs_opts_check_creds(o);
		if (r < 0)
			die(-r, "%s", o->error[0] ? o->error : "invalid credentials file");
	}
	if (stat(o->mountpoint, &st) < 0)
		die(errno, "mount point %s: %s", o->mountpoint, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		die(ENOTDIR, "mount point %s is not a directory", o->mountpoint);
}

/* Set up *fs from the options and prove the share answers and accepts
 * the credentials, or exit with the reason. */
static void
connect_share(const struct smbfs_opts *o, struct smbfs *fs)
{
	int r;

	check_resolvable(o);
	if (pthread_mutex_init(&fs->lock, NULL) != 0)
		die(ENOMEM, NULL);
	fs->view = o->view;
	fs->mountpoint = o->mountpoint;
	fs->hard = o->hard;
	fs->grace_s = o->grace_s;
	fs->nostrictsync = o->nostrictsync;
	fs->io_deadline_s = o->io_deadline_s;
	fs->port = o->port;
	fs->journal.tail = &fs->journal.head;
	fs->journal.cap = (size_t)o->replay_mib << 20;
	if (!o->view.ro && !o->nostrictsync && smbfs_durable_init() < 0)
		die(EOPNOTSUPP, "cannot make fsync durable on the server: %s",
			smbfs_durable_unavailable());
	r = build_base_url(o, fs);
	if (r < 0)
		die(-r, "malformed share name");
	r = smbfs_context_new(o, &fs->ctx);
	if (r < 0)
		die(-r, "could not initialise the SMB client library");
	smbfs_watch_connections(fs);
	r = smbfs_probe(fs);
	if (r < 0 && classify(-r) == EACCES && !o->guest && smbfs_probe_server(fs) == 0)
		die(EPERM,
			"the server accepted the credentials, but the share \"%s\" "
			"refused this user (authenticated; access denied)" RAW,
			o->share, -r);
	if (r < 0)
		die_probe(o, -r);
}

/* Workers fork in the daemon, before the loop's threads exist; with
 * conns=1 (or if they cannot start) everything goes over our own
 * connection. */
static void
start_pool(const struct smbfs_opts *o, struct smbfs *fs, int argc, char **argv)
{
	int r;

	if (o->conns >= 2 && (r = smbfs_pool_start(fs, o, argc, argv)) < 0)
		syslog(LOG_ERR, "%s: cannot start %u connections (%s); using one",
			o->mountpoint, o->conns, strerror(-r));
}

/* fuse_daemonize(), but the parent exits only once the connection
 * workers run in the daemon: "mounted" means ready, and a process list
 * taken right after shows the workers under their own name. */
static int
daemonize(const struct smbfs_opts *o, struct smbfs *fs, int argc, char **argv)
{
	int pfd[2], nul;
	char c = 0;

	if (o->foreground) {
		start_pool(o, fs, argc, argv);
		return 0;
	}
	if (pipe(pfd) < 0)
		return -1;
	switch (fork()) {
	case -1:
		return -1;
	case 0:
		break;
	default:
		close(pfd[1]);
		if (read(pfd[0], &c, 1) != 1)
			_exit(1);
		_exit(0);
	}
	close(pfd[0]);
	if (setsid() < 0 || chdir("/") < 0)
		return -1;
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0)
		return -1;
	close(nul);
	start_pool(o, fs, argc, argv);
	if (write(pfd[1], &c, 1) != 1)
		return -1;
	close(pfd[1]);
	return 0;
}

/* Mount, daemonize (unless foreground) and serve until unmounted.
 * Returns the process's exit status. */
static int
mount_and_serve(const struct smbfs_opts *o, struct smbfs *fs, int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse *fuse;
	int r;

	build_fuse_args(o, &args);
	fuse = fuse_new(&args, smbfs_operations(), sizeof(struct fuse_operations), fs);
	if (!fuse)
		die(EINVAL, "could not set up FUSE");
	if (fuse_mount(fuse, o->mountpoint) != 0)
		die(errno > 0 && errno != ENOENT ? errno : EIO,
			"could not mount FUSE on %s (is /dev/fuse usable?)", o->mountpoint);
	fflush(stderr);
	fuse_log_on = true;
	openlog("nqrust-smbfs", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	/* Parent exits 0 here with the mount in place; the child carries on
	 * as a session leader with stdio on /dev/null. */
	if (daemonize(o, fs, argc, argv) != 0) {
		fuse_unmount(fuse);
		die(EIO, "could not daemonize");
	}
	fs->session = fuse_get_session(fuse);
	if (fuse_set_signal_handlers(fuse_get_session(fuse)) != 0) {
		fuse_unmount(fuse);
		return 1;
	}
	unsigned long dev = 0, now;
	bool had_dev = smbfs_mount_dev(o->mountpoint, &dev);

	r = serve(fuse, fs->pool ? o->conns : 1);
	smbfs_pool_stop(fs);
	/* The loop's result after an unmount depends on which worker saw
	 * the connection end first; unmounted is a clean end. */
	if (r != 0 && had_dev && !(smbfs_mount_dev(o->mountpoint, &now) && now == dev))
		r = 0;
	else if (r != 0)
		syslog(LOG_ERR, "%s: the FUSE session ended with error %d", o->mountpoint,
			r);
	fuse_remove_signal_handlers(fuse_get_session(fuse));
	fuse_unmount(fuse);
	fuse_destroy(fuse);
	fuse_opt_free_args(&args);
	return r == 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct smbfs_opts o;
	struct smbfs fs = { 0 };
	int r = 0;

	signal(SIGPIPE, SIG_IGN);
	/* The password will be in this process's memory: no core dumps and
	 * no ptrace by others. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	fuse_set_log_func(fuse_log_quiet);

	load_options(argc, argv, &o);
	connect_share(&o, &fs);
	/* With --check, the share answered and accepted these credentials:
	 * that is all it proves. Nothing is mounted. */
	if (!o.check_only)
		r = mount_and_serve(&o, &fs, argc, argv);
	smbfs_release(&fs);
	pthread_mutex_destroy(&fs.lock);
	smbfs_opts_release(&o);
	return r;
}
