#include "agent/smb/bridge.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/macro.h"

/* Read a small /proc file of pid into buf (NUL-terminated); its length. */
static ssize_t
read_proc(const char *pid, const char *what, char *buf, size_t bufsz)
{
	char path[64];
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof path, "/proc/%s/%s", pid, what);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, bufsz - 1);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return n;
}

static bool
is_zombie(const char *pid)
{
	char st[512], *p;

	if (read_proc(pid, "stat", st, sizeof st) <= 0)
		return true;
	p = strrchr(st, ')');
	return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

/* argv[0] ends in /nqrust-smbfs, argv[2] is mount_point, no --check. */
static bool
serves(const char *cmd, size_t n, const char *mount_point)
{
	const char *argv[4] = { 0 };
	size_t argc = 0;

	for (size_t off = 0; off < n; off += strlen(cmd + off) + 1) {
		if (argc < 4)
			argv[argc] = cmd + off;
		argc++;
		if (!strcmp(cmd + off, "--check"))
			return false;
	}
	if (argc < 3)
		return false;
	const char *base = strrchr(argv[0], '/');
	base = base ? base + 1 : argv[0];
	return !strcmp(base, "nqrust-smbfs") && !strcmp(argv[2], mount_point);
}

int
smb_bridge_alive(const char *mount_point)
{
	const size_t cmdsz = 16384;
	_cleanup_free_ char *cmd = malloc(cmdsz);
	struct dirent *de;
	DIR *d;
	int found = 0;

	if (!cmd)
		return -ENOMEM;
	d = opendir("/proc");
	if (!d)
		return -errno;
	while (!found && (de = readdir(d))) {
		ssize_t n;
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		n = read_proc(de->d_name, "cmdline", cmd, cmdsz);
		if (n > 0 && serves(cmd, (size_t)n, mount_point) && !is_zombie(de->d_name))
			found = 1;
	}
	closedir(d);
	return found;
}
