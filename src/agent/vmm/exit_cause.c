/* Why a VMM failed, in words, from what it wrote to its stderr
 * (<run_dir>/console.log): the operator must never be left with only a
 * path under the agent's 0700 state directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"
#include "agent/vmm/vmm.h"

#define CAUSE_SCAN_MAX (16 * 1024)

/* The last line of buf (len bytes) holding needle (case-insensitive),
 * copied into line with a "qemu-system-x86_64: "-style prefix dropped. */
static bool
find_line(const char *buf, const char *needle, char *line, size_t sz)
{
	const char *hit = NULL, *p = buf;

	while ((p = strcasestr(p, needle)))
		hit = p++;
	if (!hit)
		return false;
	const char *start = hit, *end = strchr(hit, '\n');
	while (start > buf && start[-1] != '\n')
		start--;
	if (!end)
		end = start + strlen(start);
	while (end > start && (end[-1] == '\r' || end[-1] == ' '))
		end--;
	const char *colon = memchr(start, ':', (size_t)(end - start));
	if (colon && colon - start < 40 &&
		memchr(start, '/', (size_t)(colon - start)) == NULL && colon + 2 <= end)
		start = colon + 2;
	snprintf(line, sz, "%.*s", (int)(end - start), start);
	for (char *c = line; *c; c++)
		if ((unsigned char)*c < 0x20)
			*c = ' ';
	return true;
}

/* The tail of path as a NUL-terminated string in buf; "" when unreadable. */
static void
read_tail(const char *path, char *buf, size_t sz)
{
	struct stat st;
	ssize_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	buf[0] = '\0';
	if (fd < 0)
		return;
	if (fstat(fd, &st) == 0 && st.st_size > (off_t)(sz - 1))
		(void)lseek(fd, st.st_size - (off_t)(sz - 1), SEEK_SET);
	n = read(fd, buf, sz - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	/* NULs inside would hide what follows from the string search. */
	for (ssize_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
}

int
vmm_exit_cause(const char *run_dir, const char *hypervisor, unsigned memory_mib, char *ret,
	size_t sz)
{
	char buf[CAUSE_SCAN_MAX + 1];
	const char *who = strcmp(hypervisor, "firecracker") ? "QEMU" : "Firecracker";
	char path[PATH_MAX + 16], line[200];
	int r = 1;

	snprintf(path, sizeof path, "%s/console.log", run_dir);
	read_tail(path, buf, sizeof buf);
	if (strcasestr(buf, "Cannot allocate memory") ||
		strcasestr(buf, "cannot set up guest memory"))
		snprintf(ret, sz, "%s could not allocate %u MiB of guest memory", who,
			memory_mib);
	else if (find_line(buf, "Could not open", line, sizeof line) ||
		 find_line(buf, "No such file or directory", line, sizeof line))
		snprintf(ret, sz, "%s could not open the disk or kernel: %s", who, line);
	else if (find_line(buf, "kvm", line, sizeof line))
		snprintf(ret, sz, "%s could not use KVM: %s", who, line);
	else if (find_line(buf, "tcg", line, sizeof line))
		snprintf(ret, sz, "%s could not start TCG: %s", who, line);
	else if (find_line(buf, "error", line, sizeof line))
		snprintf(ret, sz, "%s failed: %s", who, line);
	else
		r = 0;
	return r;
}
