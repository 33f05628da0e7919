/* Run a helper program: posix_spawn into its own process group, explicit
 * environment, stdin from /dev/null or a small buffer, capped capture of
 * stdout and stderr, and a deadline after which the whole group is killed.
 *
 * posix_spawn (glibc: clone(CLONE_VM|CLONE_VFORK) + exec) is safe in a
 * threaded daemon and reports exec failures (ENOENT, EACCES) as its return
 * value, so no error pipe is needed. */
#include "common/nq_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"

/* After the direct child has exited, a grandchild it left behind (a
 * daemonizing helper) may keep the pipes open: wait this long for EOF and
 * then stop reading. */
#define SPAWN_EOF_GRACE_MS 200
/* Poll slice when pidfd_open is unavailable and exit must be polled. */
#define SPAWN_POLL_SLICE_MS 20

/* The minimal environment children get. Sanitizer settings are passed
 * through (they are never secret) so instrumented test builds of helpers
 * report where the test harness looks. */
static const char *default_env[8] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C",
	"LC_ALL=C",
	NULL,
};
static pthread_once_t default_env_once = PTHREAD_ONCE_INIT;

static void
default_env_init(void)
{
	static const char *const pass[] = { "ASAN_OPTIONS=", "UBSAN_OPTIONS=",
		"LSAN_OPTIONS=" };
	extern char **environ;
	size_t n = 3;

	for (char **e = environ; e && *e && n + 1 < ARRAY_SIZE(default_env); e++)
		for (size_t i = 0; i < ARRAY_SIZE(pass); i++)
			if (!strncmp(*e, pass[i], strlen(pass[i])))
				default_env[n++] = *e;
	default_env[n] = NULL;
}

struct capture {
	int fd;
	char *buf;
	size_t len, cap;
};

void
spawn_result_release(struct spawn_result *r)
{
	if (!r)
		return;
	free(r->out);
	free(r->err);
	memset(r, 0, sizeof *r);
}

bool
spawn_ok(const struct spawn_result *r)
{
	return r && r->exited && !r->timed_out && r->exit_code == 0;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Read what is available; bytes beyond the cap are drained and dropped so
 * the child never blocks on a full pipe. Closes the fd at EOF or error. */
static void
capture_read(struct capture *c)
{
	char sink[4096];

	for (int rounds = 0; c->fd >= 0 && rounds < 16; rounds++) {
		size_t room = c->cap - c->len;
		ssize_t n;

		if (room > 0)
			n = read(c->fd, c->buf + c->len, room);
		else
			n = read(c->fd, sink, sizeof sink);
		if (n > 0) {
			if (room > 0)
				c->len += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		close_fd(&c->fd);
	}
}

/* Write more of the stdin buffer. SIGPIPE is blocked around the write (and
 * a SIGPIPE this write raised is consumed) so a child that exits without
 * reading its input cannot kill the daemon. Returns false when done. */
static bool
stdin_write(int fd, const char *data, size_t len, size_t *off)
{
	struct timespec zero = { 0, 0 };
	sigset_t pipe_set, pending, old;
	bool was_pending;
	ssize_t n;
	int e;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	sigpending(&pending);
	was_pending = sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, data + *off, len - *off);
	e = errno;
	if (n < 0 && e == EPIPE && !was_pending)
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (n > 0)
		*off += (size_t)n;
	else if (n < 0 && (e == EAGAIN || e == EINTR))
		return true;
	else
		return false;
	return *off < len;
}

static int
pidfd_open_compat(pid_t pid)
{
#ifdef SYS_pidfd_open
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);

	if (fd >= 0)
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	return fd;
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return negerrno();
	return 0;
}

/* Child setup for both kinds of child: in_fd (or /dev/null when < 0) on
 * 0, out_fd on 1, err_fd on 2, every other descriptor closed, empty
 * signal mask, default dispositions; `flags` adds POSIX_SPAWN_SETPGROUP
 * (an own process group) or POSIX_SPAWN_SETSID (a new session). */
static int
prepare_child(posix_spawn_file_actions_t *fa, posix_spawnattr_t *attr, const int fds[3],
	short flags)
{
	sigset_t none, all;
	int r;

	if (fds[0] >= 0)
		r = posix_spawn_file_actions_adddup2(fa, fds[0], STDIN_FILENO);
	else
		r = posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null",
			O_RDONLY, 0);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(fa, fds[1], STDOUT_FILENO);
	if (r == 0)
		r = posix_spawn_file_actions_adddup2(fa, fds[2], STDERR_FILENO);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
	if (r == 0)
		r = posix_spawn_file_actions_addclosefrom_np(fa, 3);
#endif
	if (r != 0)
		return -r;

	sigemptyset(&none);
	sigfillset(&all);
	r = posix_spawnattr_setflags(attr,
		flags | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (r == 0 && (flags & POSIX_SPAWN_SETPGROUP))
		r = posix_spawnattr_setpgroup(attr, 0);
	if (r == 0)
		r = posix_spawnattr_setsigmask(attr, &none);
	if (r == 0)
		r = posix_spawnattr_setsigdefault(attr, &all);
	return -r;
}

/* posix_spawn reports exec failures too, but checking first keeps the
 * common mistakes deterministic (and visible under valgrind, whose clone
 * emulation loses the vfork error channel). */
static int
check_program(const char *path)
{
	struct stat prog;

	if (stat(path, &prog) < 0)
		return negerrno();
	if (!S_ISREG(prog.st_mode) || access(path, X_OK) < 0)
		return -EACCES;
	return 0;
}

/* Start argv with prepare_child's setup; the environment is envp or the
 * default one. */
static int
start_child(const char *const *argv, const char *const *envp, const int fds[3],
	short flags, pid_t *ret_pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	pid_t pid;
	int r;

	if ((r = posix_spawn_file_actions_init(&fa)) != 0)
		return -r;
	if ((r = posix_spawnattr_init(&attr)) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		return -r;
	}
	pthread_once(&default_env_once, default_env_init);
	r = prepare_child(&fa, &attr, fds, flags);
	if (r == 0)
		r = -posix_spawn(&pid, argv[0], &fa, &attr, (char *const *)argv,
			(char *const *)(envp ? envp : default_env));
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (r < 0)
		return r;
	*ret_pid = pid;
	return 0;
}

/* A close-on-exec pipe into *r_fd, *w_fd (left for the caller to close
 * even on failure); the end the parent keeps is made non-blocking. */
static int
open_pipe(int *r_fd, int *w_fd, bool parent_writes)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return negerrno();
	*r_fd = p[0], *w_fd = p[1];
	return set_nonblock(parent_writes ? p[1] : p[0]);
}

struct run_state {
	pid_t pid;
	int pidfd;
	int status;
	bool reaped;
	bool lost; /* reaped by someone else: status unknown */
	bool timed_out;
	int64_t deadline; /* 0: none */
	int64_t grace_end;
};

static void
try_reap(struct run_state *st, int flags)
{
	pid_t w;

	do
		w = waitpid(st->pid, &st->status, flags);
	while (w < 0 && errno == EINTR);
	if (w == st->pid || (w < 0 && errno == ECHILD)) {
		st->lost = w < 0;
		st->reaped = true;
		st->grace_end = now_ms() + SPAWN_EOF_GRACE_MS;
		close_fd(&st->pidfd);
	}
}

/* The poll loop: move stdin, collect stdout/stderr, watch the child and
 * the deadline. Returns when the child is reaped and both pipes are at EOF
 * (or the post-exit grace has run out). */
static void
supervise(struct run_state *st, struct capture cap[2], int *in_fd, const char *in_data,
	size_t in_len)
{
	size_t in_off = 0;

	for (;;) {
		struct pollfd pfd[4];
		int nfds = 0, timeout = -1, idx_in = -1, idx_pid = -1;
		int idx_cap[2] = { -1, -1 };
		int64_t now = now_ms();

		if (st->reaped &&
			((cap[0].fd < 0 && cap[1].fd < 0) || now >= st->grace_end))
			break;
		if (!st->reaped && st->deadline > 0 && now >= st->deadline) {
			/* The child is not reaped, so its pid (the group id) cannot
			 * have been reused: kill the whole group. */
			(void)kill(-st->pid, SIGKILL);
			(void)kill(st->pid, SIGKILL);
			st->timed_out = true;
			st->deadline = 0;
			close_fd(in_fd);
		}

		for (int i = 0; i < 2; i++)
			if (cap[i].fd >= 0) {
				idx_cap[i] = nfds;
				pfd[nfds++] = (struct pollfd){ .fd = cap[i].fd,
					.events = POLLIN };
			}
		if (*in_fd >= 0) {
			idx_in = nfds;
			pfd[nfds++] = (struct pollfd){ .fd = *in_fd, .events = POLLOUT };
		}
		if (!st->reaped && st->pidfd >= 0) {
			idx_pid = nfds;
			pfd[nfds++] = (struct pollfd){ .fd = st->pidfd, .events = POLLIN };
		}
		if (st->reaped)
			timeout = (int)(st->grace_end - now);
		else if (st->deadline > 0)
			timeout = (int)(st->deadline - now);
		if (!st->reaped && st->pidfd < 0 &&
			(timeout < 0 || timeout > SPAWN_POLL_SLICE_MS))
			timeout = SPAWN_POLL_SLICE_MS;

		if (poll(pfd, (nfds_t)nfds, timeout) < 0 && errno != EINTR) {
			/* Should not happen; avoid a busy loop all the same. */
			usleep(1000);
			continue;
		}
		for (int i = 0; i < 2; i++)
			if (idx_cap[i] >= 0 && pfd[idx_cap[i]].revents)
				capture_read(&cap[i]);
		if (idx_in >= 0 && pfd[idx_in].revents) {
			if ((pfd[idx_in].revents & (POLLERR | POLLHUP)) ||
				!stdin_write(*in_fd, in_data, in_len, &in_off))
				close_fd(in_fd);
		}
		if (!st->reaped && (idx_pid < 0 || pfd[idx_pid].revents))
			try_reap(st, WNOHANG);
	}
	/* Whatever is already buffered still belongs to the result. */
	for (int i = 0; i < 2; i++) {
		capture_read(&cap[i]);
		close_fd(&cap[i].fd);
	}
	close_fd(in_fd);
}

static struct spawn_result
run_result(const struct run_state *st, char *out, char *err)
{
	bool exited = !st->lost && WIFEXITED(st->status);
	bool signaled = !st->lost && WIFSIGNALED(st->status);

	return (struct spawn_result){
		.exited = exited,
		.exit_code = exited ? WEXITSTATUS(st->status) : 0,
		.signaled = signaled,
		.term_signal = signaled ? WTERMSIG(st->status) : 0,
		.timed_out = st->timed_out,
		.out = out,
		.err = err,
	};
}

int
spawn_run(const struct spawn_opts *o, struct spawn_result *ret)
{
	_cleanup_close_ int in_r = -1, in_w = -1, out_r = -1, out_w = -1;
	_cleanup_close_ int err_r = -1, err_w = -1;
	_cleanup_free_ char *out_buf = NULL, *err_buf = NULL;
	struct run_state st = { .pidfd = -1 };
	struct capture cap[2];
	size_t cap_max;
	int r;

	if (!o || !ret || !o->argv || !o->argv[0] || o->argv[0][0] != '/')
		return -EINVAL;
	if (o->stdin_len > 0 && !o->stdin_data)
		return -EINVAL;
	if ((r = check_program(o->argv[0])) < 0)
		return r;
	cap_max = o->capture_max > 0 ? o->capture_max : SPAWN_CAPTURE_MAX;
	out_buf = malloc(cap_max + 1);
	err_buf = malloc(cap_max + 1);
	if (!out_buf || !err_buf)
		return -ENOMEM;
	if ((r = open_pipe(&out_r, &out_w, false)) < 0 ||
		(r = open_pipe(&err_r, &err_w, false)) < 0 ||
		(o->stdin_data && (r = open_pipe(&in_r, &in_w, true)) < 0))
		return r;
	r = start_child(o->argv, o->envp, (const int[3]){ in_r, out_w, err_w },
		POSIX_SPAWN_SETPGROUP, &st.pid);
	if (r < 0)
		return r;

	/* Only the child keeps the write ends: EOF then means it is done. */
	close_fd(&out_w);
	close_fd(&err_w);
	close_fd(&in_r);
	if (o->stdin_data && o->stdin_len == 0)
		close_fd(&in_w);

	st.pidfd = pidfd_open_compat(st.pid);
	if (o->timeout_ms > 0)
		st.deadline = now_ms() + o->timeout_ms;
	cap[0] = (struct capture){ .fd = TAKE_FD(out_r), .buf = out_buf, .cap = cap_max };
	cap[1] = (struct capture){ .fd = TAKE_FD(err_r), .buf = err_buf, .cap = cap_max };
	supervise(&st, cap, &in_w, o->stdin_data, o->stdin_len);
	if (!st.reaped)
		try_reap(&st, 0);
	close_fd(&st.pidfd);

	out_buf[cap[0].len] = '\0';
	err_buf[cap[1].len] = '\0';
	*ret = run_result(&st, TAKE_PTR(out_buf), TAKE_PTR(err_buf));
	return 0;
}

int
spawn_background(const struct spawn_bg_opts *o, pid_t *ret_pid)
{
	_cleanup_close_ int log_fd = -1, in_fd = -1;
	int r;

	if (!o || !ret_pid || !o->argv || !o->argv[0] || o->argv[0][0] != '/' ||
		!o->log_path || !o->log_path[0])
		return -EINVAL;
	if ((r = check_program(o->argv[0])) < 0)
		return r;
	/* Opened here, not as a file action: a log that cannot be opened is
	 * this call's error, with its errno, and no process starts. */
	log_fd = open(o->log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
		0600);
	if (log_fd < 0)
		return negerrno();
	if (o->stdin_path) {
		in_fd = open(o->stdin_path, O_RDWR | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
		if (in_fd < 0)
			return negerrno();
		/* The child reads it blocking. */
		if (fcntl(in_fd, F_SETFL, O_RDWR) < 0)
			return negerrno();
	}
	/* The log on 1 and 2, stdin_path or /dev/null on 0, a new session. */
	return start_child(o->argv, o->envp, (const int[3]){ in_fd, log_fd, log_fd },
		POSIX_SPAWN_SETSID, ret_pid);
}
