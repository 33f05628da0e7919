/* Kernel readahead tuning for our FUSE mount; see smbops.h. */
#include "smbfs/smbops.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* The device of the topmost mount at mountpoint, from mountinfo (stat()
 * on our own mount would recurse into us). */
static bool
mount_dev(const char *mountpoint, unsigned *ret_maj, unsigned *ret_min)
{
	char line[4096];
	unsigned maj, min;
	bool found = false;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f)) {
		char mp[4096];

		/* id parent maj:min root mountpoint ... ("\040"-escaped) */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mp) == 3 &&
			strcmp(mp, mountpoint) == 0) {
			/* keep the last (topmost) match */
			found = true;
			*ret_maj = maj;
			*ret_min = min;
		}
	}
	fclose(f);
	return found;
}

bool
smbfs_mount_dev(const char *mountpoint, unsigned long *ret_dev)
{
	unsigned maj, min;

	if (!mount_dev(mountpoint, &maj, &min))
		return false;
	*ret_dev = ((unsigned long)maj << 20) | min;
	return true;
}

/* Raise the kernel's readahead for this mount to one request (1 MiB):
 * FUSE caps it at 128 KiB in INIT, which costs 3-4x in sequential buffered
 * reads. Runs once, on the first request after INIT (the kernel sets the
 * cap when it processes our INIT reply). The device number comes from
 * mountinfo: stat() on our own mount would recurse. Best effort. */
void
smbfs_raise_readahead(const char *mountpoint)
{
	char path[96];
	unsigned fmaj = 0, fmin = 0;
	int fd;

	if (!mount_dev(mountpoint, &fmaj, &fmin))
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb", fmaj, fmin);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1024", 4) < 0) {
		/* best effort */
	}
	close(fd);
}
