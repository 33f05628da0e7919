/* Kernel readahead tuning for our FUSE mount; see smbops.h. */
#include "smbfs/smbops.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Raise the kernel's readahead for this mount to one request (1 MiB):
 * FUSE caps it at 128 KiB in INIT, which costs 3-4x in sequential buffered
 * reads. Runs once, on the first request after INIT (the kernel sets the
 * cap when it processes our INIT reply). The device number comes from
 * mountinfo: stat() on our own mount would recurse. Best effort. */
void
smbfs_raise_readahead(const char *mountpoint)
{
	char line[4096], path[96];
	unsigned maj, min, fmaj = 0, fmin = 0;
	bool found = false;
	FILE *f;
	int fd;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mp[4096];

		/* id parent maj:min root mountpoint ... ("\040"-escaped) */
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &maj, &min, mp) == 3 &&
		    strcmp(mp, mountpoint) == 0) {
			/* keep the last (topmost) match */
			found = true;
			fmaj = maj;
			fmin = min;
		}
	}
	fclose(f);
	if (!found)
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
