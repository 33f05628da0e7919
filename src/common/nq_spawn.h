/* Run a subprocess from an argv array: posix_spawn, no shell, explicit
 * environment, stdin from /dev/null (or a small buffer), a deadline after
 * which the process group is killed, capped capture of stdout and stderr. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SPAWN_CAPTURE_MAX (64 * 1024)

struct spawn_opts {
	const char *const *argv; /* argv[0] must be an absolute path */
	const char *const *envp; /* NULL: a minimal PATH/LANG environment */
	int timeout_ms;          /* <= 0: no deadline */
	const char *stdin_data;  /* NULL: /dev/null */
	size_t stdin_len;
	size_t capture_max; /* 0: SPAWN_CAPTURE_MAX */
};

struct spawn_result {
	int exit_code;   /* valid when exited */
	int term_signal; /* valid when signaled */
	bool exited;
	bool signaled;
	bool timed_out; /* deadline hit; the group was killed */
	char *out;      /* owned, NUL-terminated, possibly truncated */
	char *err;      /* owned, NUL-terminated, possibly truncated */
};

void spawn_result_release(struct spawn_result *r);
/* 0 when the process ran (whatever its exit status; see *ret), -errno when
 * it could not be started (e.g. -ENOENT for a missing program). *ret is
 * written only on success. */
int spawn_run(const struct spawn_opts *o, struct spawn_result *ret);
/* True when r says the process exited with status 0. */
bool spawn_ok(const struct spawn_result *r);

/* A long-running process started in the background (a VMM): no deadline,
 * no capture. stdin is /dev/null, stdout and stderr are appended to
 * log_path (created 0600, never through a symlink), every other
 * descriptor is closed, and the child runs in a new session with an empty
 * signal mask and default dispositions, so it outlives the caller and no
 * signal aimed at the caller's process group reaches it. */
struct spawn_bg_opts {
	const char *const *argv; /* argv[0] must be an absolute path */
	const char *const *envp; /* NULL: the minimal environment spawn_run uses */
	const char *log_path;    /* appended to; created when missing */
	/* NULL: stdin is /dev/null. Else opened read-write without following
	 * a symlink (a FIFO: the child never sees end of file, and a writer
	 * can open it while the child runs). */
	const char *stdin_path;
};

/* 0 with the child's pid in *ret_pid (the caller reaps it with waitpid),
 * or -errno when the program cannot be run or any setup step (opening the
 * log, preparing the file actions and attributes) failed; then no process
 * was started. */
int spawn_background(const struct spawn_bg_opts *o, pid_t *ret_pid);
