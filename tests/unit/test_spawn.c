/* spawn_run: exit codes, capture and its cap, deadline, stdin, exec errors
 * and helpers that leave a grandchild holding the pipes. spawn_background:
 * the log, the new session, the descriptors and signal mask the child
 * gets, and every setup error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/nq_spawn.h"

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Gone or a zombie (it may be reparented to a PID 1 that does not reap)
 * within a second. */
static bool
process_gone(pid_t pid)
{
	for (int i = 0; i < 100; i++) {
		char path[64], buf[256];
		FILE *f;
		const char *rp;

		snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
		f = fopen(path, "r");
		if (!f)
			return true;
		buf[0] = '\0';
		if (!fgets(buf, sizeof buf, f))
			buf[0] = '\0';
		fclose(f);
		rp = strrchr(buf, ')');
		if (rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'))
			return true;
		usleep(10000);
	}
	return false;
}

static int
run(const char *const *argv, int timeout_ms, struct spawn_result *res)
{
	struct spawn_opts o = { .argv = argv, .timeout_ms = timeout_ms };

	return spawn_run(&o, res);
}

static void
test_exit_code_and_stdout(void **state)
{
	const char *const ok[] = { "/bin/echo", "hello", "world", NULL };
	const char *const f[] = { "/bin/sh", "-c", "exit 7", NULL };
	struct spawn_result r = { 0 };

	(void)state;
	assert_int_equal(run(ok, 5000, &r), 0);
	assert_true(r.exited);
	assert_int_equal(r.exit_code, 0);
	assert_true(spawn_ok(&r));
	assert_string_equal(r.out, "hello world\n");
	assert_string_equal(r.err, "");
	spawn_result_release(&r);

	assert_int_equal(run(f, 5000, &r), 0);
	assert_true(r.exited);
	assert_int_equal(r.exit_code, 7);
	assert_false(spawn_ok(&r));
	assert_false(r.timed_out);
	spawn_result_release(&r);
	spawn_result_release(NULL);
}

static void
test_stderr_capture(void **state)
{
	const char *const argv[] = { "/bin/sh", "-c",
		"echo 'mount error(13): Permission denied' >&2; exit 32", NULL };
	struct spawn_result r = { 0 };

	(void)state;
	assert_int_equal(run(argv, 5000, &r), 0);
	assert_int_equal(r.exit_code, 32);
	assert_string_equal(r.err, "mount error(13): Permission denied\n");
	assert_string_equal(r.out, "");
	spawn_result_release(&r);
}

static void
test_capture_cap(void **state)
{
	/* 1 MiB on each stream against a 1000-byte cap: capped, and the child
	 * is never blocked by a full pipe. */
	const char *const argv[] = { "/bin/sh", "-c",
		"head -c 1048576 /dev/zero | tr '\\0' a; "
		"head -c 1048576 /dev/zero | tr '\\0' b >&2; exit 3",
		NULL };
	struct spawn_opts o = { .argv = argv, .timeout_ms = 10000, .capture_max = 1000 };
	struct spawn_result r = { 0 };

	(void)state;
	assert_int_equal(spawn_run(&o, &r), 0);
	assert_false(r.timed_out);
	assert_int_equal(r.exit_code, 3);
	assert_int_equal(strlen(r.out), 1000);
	assert_int_equal(strlen(r.err), 1000);
	assert_int_equal(strspn(r.out, "a"), 1000);
	assert_int_equal(strspn(r.err, "b"), 1000);
	spawn_result_release(&r);
}

static void
test_default_capture_cap(void **state)
{
	const char *const argv[] = { "/bin/sh", "-c",
		"head -c 200000 /dev/zero | tr '\\0' x >&2", NULL };
	struct spawn_result r = { 0 };

	(void)state;
	assert_int_equal(run(argv, 10000, &r), 0);
	assert_int_equal(strlen(r.err), SPAWN_CAPTURE_MAX);
	spawn_result_release(&r);
}

static void
test_timeout_kills_group(void **state)
{
	/* The shell's child sleep is in the same group: both must die, or the
	 * pipe would stay open for the full 10 s. */
	const char *const argv[] = { "/bin/sh", "-c", "sleep 10; echo late", NULL };
	const char *const direct[] = { "/bin/sleep", "10", NULL };
	struct spawn_result r = { 0 };
	int64_t t0 = mono_ms();

	(void)state;
	assert_int_equal(run(argv, 300, &r), 0);
	assert_true(mono_ms() - t0 < 2000);
	assert_true(mono_ms() - t0 >= 300);
	assert_true(r.timed_out);
	assert_true(r.signaled);
	assert_int_equal(r.term_signal, SIGKILL);
	assert_false(spawn_ok(&r));
	assert_string_equal(r.out, "");
	spawn_result_release(&r);

	/* The grandchild itself must be gone, not just its pipe ignored. */
	{
		const char *const bg[] = { "/bin/sh", "-c", "sleep 10 & echo $!; wait",
			NULL };
		long pid;

		assert_int_equal(run(bg, 300, &r), 0);
		assert_true(r.timed_out);
		pid = strtol(r.out, NULL, 10);
		assert_true(pid > 1);
		assert_true(process_gone((pid_t)pid));
		spawn_result_release(&r);
	}

	t0 = mono_ms();
	assert_int_equal(run(direct, 200, &r), 0);
	assert_true(mono_ms() - t0 < 1500);
	assert_true(r.timed_out);
	spawn_result_release(&r);
}

static void
test_exec_errors(void **state)
{
	const char *const missing[] = { "/nonexistent/program", NULL };
	const char *const relative[] = { "sleep", "1", NULL };
	const char *const dotrel[] = { "./x", NULL };
	char path[] = "/tmp/nq-spawn-noexec-XXXXXX";
	const char *const notexec[] = { path, NULL };
	const char *const empty[] = { NULL };
	struct spawn_result r = { .exit_code = 99 };
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, 0644), 0);
	close(fd);
	assert_int_equal(run(missing, 1000, &r), -ENOENT);
	assert_int_equal(r.exit_code, 99); /* untouched */
	assert_int_equal(run(relative, 1000, &r), -EINVAL);
	assert_int_equal(run(dotrel, 1000, &r), -EINVAL);
	assert_int_equal(run(notexec, 1000, &r), -EACCES);
	unlink(path);
	assert_int_equal(run(empty, 1000, &r), -EINVAL);
	assert_int_equal(spawn_run(NULL, &r), -EINVAL);
	assert_null(r.out);
}

static void
test_stdin_data(void **state)
{
	const char *const cat[] = { "/bin/cat", NULL };
	const char *const wc[] = { "/usr/bin/wc", "-c", NULL };
	const char *const ignore[] = { "/bin/true", NULL };
	static char big[1 << 20];
	struct spawn_opts o = { .argv = cat,
		.timeout_ms = 5000,
		.stdin_data = "line one\nline two\n",
		.stdin_len = 18 };
	struct spawn_result r = { 0 };

	(void)state;
	assert_int_equal(spawn_run(&o, &r), 0);
	assert_string_equal(r.out, "line one\nline two\n");
	spawn_result_release(&r);

	/* More than a pipe buffer: written as the child reads. */
	memset(big, 'z', sizeof big);
	o = (struct spawn_opts){ .argv = wc,
		.timeout_ms = 5000,
		.stdin_data = big,
		.stdin_len = sizeof big };
	assert_int_equal(spawn_run(&o, &r), 0);
	assert_string_equal(r.out, "1048576\n");
	spawn_result_release(&r);

	/* A child that never reads: no SIGPIPE kills the test. */
	o = (struct spawn_opts){ .argv = ignore,
		.timeout_ms = 5000,
		.stdin_data = big,
		.stdin_len = sizeof big };
	assert_int_equal(spawn_run(&o, &r), 0);
	assert_true(spawn_ok(&r));
	spawn_result_release(&r);
}

static void
test_stdin_is_dev_null(void **state)
{
	const char *const cat[] = { "/bin/cat", NULL };
	struct spawn_result r = { 0 };

	(void)state;
	assert_int_equal(run(cat, 2000, &r), 0);
	assert_false(r.timed_out);
	assert_string_equal(r.out, "");
	spawn_result_release(&r);
}

static void
test_environment(void **state)
{
	const char *const env[] = { "/usr/bin/env", NULL };
	const char *const custom[] = { "FOO=bar", NULL };
	struct spawn_opts o = { .argv = env, .timeout_ms = 2000 };
	struct spawn_result r = { 0 };

	(void)state;
	setenv("NQ_TEST_SECRET", "leak", 1);
	assert_int_equal(spawn_run(&o, &r), 0);
	assert_string_equal(r.out,
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLANG=C\nLC_ALL=C\n");
	spawn_result_release(&r);
	o.envp = custom;
	assert_int_equal(spawn_run(&o, &r), 0);
	assert_string_equal(r.out, "FOO=bar\n");
	spawn_result_release(&r);
}

static void
test_fds_and_signals_reset(void **state)
{
	/* No inherited descriptor beyond 0-2, an empty signal mask, and its own
	 * process group. */
	const char *const argv[] = { "/bin/sh", "-c",
		"ls /proc/self/fd | wc -l; grep SigBlk /proc/self/status; "
		"grep SigIgn /proc/self/status; "
		"set -- $(cat /proc/$$/stat); [ \"$5\" = \"$$\" ] && echo leader",
		NULL };
	struct spawn_result r = { 0 };
	int leak = open("/dev/null", O_RDONLY); /* deliberately not CLOEXEC */
	sigset_t set, old;

	(void)state;
	assert_true(leak >= 0);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, &old);
	signal(SIGHUP, SIG_IGN);
	assert_int_equal(run(argv, 5000, &r), 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGHUP, SIG_DFL);
	close(leak);
	/* ls's own fds: 0,1,2 and the one it opens for the directory. glibc
	 * keeps its two internal RT signals (32, 33) ignored across the
	 * spawn; every standard signal must be back to default. */
	{
		const char *ign = strstr(r.out, "SigIgn:\t");
		unsigned long long mask;

		assert_non_null(ign);
		mask = strtoull(ign + 8, NULL, 16);
		assert_int_equal(mask & 0x7fffffffULL, 0); /* signals 1..31 */
	}
	assert_non_null(strstr(r.out, "4\nSigBlk:\t0000000000000000\n"));
	assert_non_null(strstr(r.out, "leader\n"));
	spawn_result_release(&r);
}

static void
test_daemonizing_child(void **state)
{
	/* The shell exits at once; its background sleep keeps the pipes open
	 * for 5 s. spawn_run must come back after the short grace. */
	const char *const argv[] = { "/bin/sh", "-c", "echo started; sleep 5 & exit 0",
		NULL };
	const char *const setsid_argv[] = { "/usr/bin/setsid", "-f", "/bin/sleep", "5",
		NULL };
	struct spawn_result r = { 0 };
	int64_t t0 = mono_ms();

	(void)state;
	assert_int_equal(run(argv, 20000, &r), 0);
	assert_true(mono_ms() - t0 < 1500);
	assert_true(spawn_ok(&r));
	assert_false(r.timed_out);
	assert_string_equal(r.out, "started\n");
	spawn_result_release(&r);

	t0 = mono_ms();
	assert_int_equal(run(setsid_argv, 20000, &r), 0);
	assert_true(mono_ms() - t0 < 1500);
	assert_true(spawn_ok(&r));
	spawn_result_release(&r);
}

static void
test_no_deadline(void **state)
{
	const char *const argv[] = { "/bin/sh", "-c", "sleep 0.1; echo done", NULL };
	struct spawn_result r = { 0 };

	(void)state;
	assert_int_equal(run(argv, 0, &r), 0);
	assert_string_equal(r.out, "done\n");
	spawn_result_release(&r);
}

/* A temp directory for the background tests' logs. */
static void
tmpdir(char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "/tmp/nq-spawn-bg-XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static void
read_file(const char *path, char *buf, size_t bufsz)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, bufsz - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static int
wait_exit_code(pid_t pid)
{
	int status;

	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

/* stdout and stderr go to the log (appended, 0600), stdin is /dev/null,
 * the child leads a new session, inherits no other descriptor and no
 * blocked signal, and the caller reaps it. */
static void
test_background_child_setup(void **state)
{
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC: must not leak */
	char leak_s[16];
	const char *const argv[] = { "/bin/sh", "-c",
		"echo out; echo err >&2; "
		"echo sid=$(cut -d' ' -f6 /proc/$$/stat) pid=$$; "
		"echo stdin=$(readlink /proc/$$/fd/0); "
		"if [ -e /proc/$$/fd/$1 ]; then echo leaked; fi",
		"sh", leak_s, NULL };
	/* The mask a program gets at exec (a shell's own mask may have
	 * signals blocked for a moment around its forks). */
	const char *const mask[] = { "/bin/grep", "SigBlk", "/proc/self/status", NULL };
	char dir[64], log[128], buf[4096], want[128];
	struct spawn_bg_opts o = { .argv = argv, .log_path = log };
	sigset_t term, old;
	struct stat st;
	pid_t pid = 0, sh_pid = 0;

	(void)state;
	tmpdir(dir, sizeof dir);
	snprintf(log, sizeof log, "%s/console.log", dir);
	assert_true(leak >= 0);
	snprintf(leak_s, sizeof leak_s, "%d", leak);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	assert_int_equal(spawn_background(&o, &sh_pid), 0);
	assert_true(sh_pid > 0);
	assert_int_equal(wait_exit_code(sh_pid), 0);
	o.argv = mask;
	assert_int_equal(spawn_background(&o, &pid), 0);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(leak);
	assert_int_equal(wait_exit_code(pid), 0);
	read_file(log, buf, sizeof buf);
	assert_non_null(strstr(buf, "out\n"));
	assert_non_null(strstr(buf, "err\n"));
	snprintf(want, sizeof want, "sid=%d pid=%d\n", (int)sh_pid, (int)sh_pid);
	assert_non_null(strstr(buf, want));
	assert_non_null(strstr(buf, "stdin=/dev/null\n"));
	assert_null(strstr(buf, "leaked"));
	assert_non_null(strstr(buf, "SigBlk:\t0000000000000000\n"));
	assert_int_equal(stat(log, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	/* A second start appends to the same log. */
	const char *const again[] = { "/bin/sh", "-c", "echo second", NULL };
	o.argv = again;
	assert_int_equal(spawn_background(&o, &pid), 0);
	assert_int_equal(wait_exit_code(pid), 0);
	read_file(log, buf, sizeof buf);
	assert_non_null(strstr(buf, "out\n"));
	assert_non_null(strstr(buf, "second\n"));
	unlink(log);
	rmdir(dir);
}

/* The child keeps running after spawn_background returns: no deadline. */
static void
test_background_no_deadline(void **state)
{
	const char *const argv[] = { "/bin/sh", "-c", "sleep 0.5; echo late", NULL };
	char dir[64], log[128], buf[256];
	struct spawn_bg_opts o = { .argv = argv, .log_path = log };
	pid_t pid = 0;
	int status;

	(void)state;
	tmpdir(dir, sizeof dir);
	snprintf(log, sizeof log, "%s/console.log", dir);
	assert_int_equal(spawn_background(&o, &pid), 0);
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0); /* still running */
	assert_int_equal(wait_exit_code(pid), 0);
	read_file(log, buf, sizeof buf);
	assert_string_equal(buf, "late\n");
	unlink(log);
	rmdir(dir);
}

/* Every setup error is returned and starts nothing. */
static void
test_background_setup_errors(void **state)
{
	const char *const sh[] = { "/bin/sh", "-c", "exit 0", NULL };
	const char *const missing[] = { "/nonexistent/program", NULL };
	const char *const relative[] = { "sh", "-c", "exit 0", NULL };
	char dir[64], log[128], link[128], plain[128];
	const char *const notexec[] = { plain, NULL };
	struct spawn_bg_opts o = { .argv = sh, .log_path = log };
	pid_t pid = 4242;

	(void)state;
	tmpdir(dir, sizeof dir);
	snprintf(log, sizeof log, "%s/no/such/dir/console.log", dir);
	assert_int_equal(spawn_background(&o, &pid), -ENOENT);
	snprintf(log, sizeof log, "%s/real.log", dir);
	snprintf(link, sizeof link, "%s/link.log", dir);
	assert_int_equal(symlink(log, link), 0);
	o.log_path = link;
	assert_int_equal(spawn_background(&o, &pid), -ELOOP);
	o.log_path = log;
	o.argv = missing;
	assert_int_equal(spawn_background(&o, &pid), -ENOENT);
	o.argv = relative;
	assert_int_equal(spawn_background(&o, &pid), -EINVAL);
	snprintf(plain, sizeof plain, "%s/not-executable", dir);
	int fd = open(plain, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	close(fd);
	o.argv = notexec;
	assert_int_equal(spawn_background(&o, &pid), -EACCES);
	o.argv = sh;
	o.log_path = NULL;
	assert_int_equal(spawn_background(&o, &pid), -EINVAL);
	assert_int_equal(spawn_background(NULL, &pid), -EINVAL);
	assert_int_equal(pid, 4242); /* never written on failure */
	/* Nothing was started. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	assert_int_equal(access(log, F_OK), -1);
	unlink(plain);
	unlink(link);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_code_and_stdout),
		cmocka_unit_test(test_stderr_capture),
		cmocka_unit_test(test_capture_cap),
		cmocka_unit_test(test_default_capture_cap),
		cmocka_unit_test(test_timeout_kills_group),
		cmocka_unit_test(test_exec_errors),
		cmocka_unit_test(test_stdin_data),
		cmocka_unit_test(test_stdin_is_dev_null),
		cmocka_unit_test(test_environment),
		cmocka_unit_test(test_fds_and_signals_reset),
		cmocka_unit_test(test_daemonizing_child),
		cmocka_unit_test(test_no_deadline),
		cmocka_unit_test(test_background_child_setup),
		cmocka_unit_test(test_background_no_deadline),
		cmocka_unit_test(test_background_setup_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
