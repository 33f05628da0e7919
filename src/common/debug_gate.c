/* See debug_gate.h. */
#include "common/debug_gate.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

bool
debug_gate_enabled(void)
{
	const char *d = getenv("NQRUST_DEBUG_GATE_DIR");

	return d && *d == '/';
}

bool
debug_gate(const char *step, bool (*cancelled)(void *arg), void *arg)
{
	const char *dir = getenv("NQRUST_DEBUG_GATE_DIR");
	char wait_path[PATH_MAX], reached[PATH_MAX];
	struct timespec tick = { 0, 20 * 1000 * 1000 };
	struct stat st;
	int fd;

	if (!dir || *dir != '/')
		return false;
	if ((size_t)snprintf(wait_path, sizeof wait_path, "%s/%s.wait", dir,
		    step) >= sizeof wait_path ||
		(size_t)snprintf(reached, sizeof reached, "%s/%s.reached", dir, step) >=
			sizeof reached)
		return false;
	if (stat(wait_path, &st) < 0)
		return false;
	log_warn("debug gate: holding at step=%s", step);
	fd = open(reached, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		close(fd);
	while (stat(wait_path, &st) == 0) {
		if (cancelled && cancelled(arg)) {
			log_warn("debug gate: cancelled at step=%s", step);
			return true;
		}
		nanosleep(&tick, NULL);
	}
	log_warn("debug gate: released step=%s", step);
	return false;
}
