/* Process helpers shared by the hypervisor drivers: launch a VMM detached
 * into its own session (spawn_background, common/nq_spawn.h), recognise it
 * again by (pid, starttime), stop it. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"
#include "common/nq_spawn.h"
#include "agent/vmm/vmm.h"

const struct vmm_ops *
vmm_find(const char *name)
{
	if (!strcmp(name, "firecracker"))
		return &vmm_firecracker_ops;
	if (!strcmp(name, "qemu"))
		return &vmm_qemu_ops;
	return NULL;
}

int
vmm_spawn(const char *const *argv, const char *log_path, const char *stdin_path,
	pid_t *ret_pid)
{
	struct spawn_bg_opts
		o = { .argv = argv, .log_path = log_path, .stdin_path = stdin_path };
	pid_t pid;
	int r = spawn_background(&o, &pid);

	if (r < 0)
		return r;
	vmm_child_add(pid);
	*ret_pid = pid;
	return 0;
}

void
vmm_exit_from_status(int status, struct vmm_exit *ret)
{
	memset(ret, 0, sizeof *ret);
	ret->known = true;
	ret->at = (long long)time(NULL);
	ret->code = -1;
	if (status == -1)
		return;
	ret->has_status = true;
	if (WIFEXITED(status))
		ret->code = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		ret->signal = WTERMSIG(status);
}

int
vmm_proc_starttime(pid_t pid, unsigned long long *ret)
{
	char path[64], buf[1024], *p, *save = NULL;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields follow the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return -EIO;
	p += 2;
	/* field 3 (state) is the first token here; starttime is field 22. */
	char *tok = strtok_r(p, " ", &save);
	if (!tok || *tok == 'Z' || *tok == 'X')
		return -ESRCH;
	for (int field = 4; field <= 22; field++) {
		tok = strtok_r(NULL, " ", &save);
		if (!tok)
			return -EIO;
	}
	*ret = strtoull(tok, NULL, 10);
	return 0;
}

bool
vmm_proc_alive(const struct vmm_proc *p)
{
	unsigned long long st;

	if (p->pid <= 0)
		return false;
	/* Reap our own children (keeping their status); adopted ones
	 * belong to init. */
	if (vmm_child_poll(p->pid) == 1)
		return false;
	if (vmm_proc_starttime(p->pid, &st) < 0)
		return false;
	return st == p->starttime;
}

bool
vmm_proc_wait_exit(const struct vmm_proc *p, int timeout_ms)
{
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (!vmm_proc_alive(p))
			return true;
		nanosleep(&ts, NULL);
	}
	return !vmm_proc_alive(p);
}

void
vmm_proc_kill(const struct vmm_proc *p)
{
	if (!vmm_proc_alive(p))
		return;
	kill(p->pid, SIGTERM);
	if (vmm_proc_wait_exit(p, 3000))
		return;
	kill(p->pid, SIGKILL);
	(void)vmm_proc_wait_exit(p, 5000);
}
