#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level min_level = LOG_LVL_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
log_set_level(enum log_level lvl)
{
	min_level = lvl;
}

int
log_level_parse(const char *s, enum log_level *ret)
{
	static const char *const names[] = { "debug", "info", "warn", "error" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	return -EINVAL;
}

bool
log_enabled(enum log_level lvl)
{
	return lvl >= min_level;
}

void
log_emit(enum log_level lvl, const char *fmt, ...)
{
	static const char *const tags[] = { "debug", "info", "warn", "error" };
	char line[2048], ts[32];
	struct timespec now;
	struct tm tm;
	va_list ap;
	int n;

	if (!log_enabled(lvl))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
	va_start(ap, fmt);
	n = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* One write per line so concurrent threads never interleave. Control
	 * characters are flattened so a value cannot forge a second line. */
	for (char *p = line; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s.%03ldZ level=%s msg=%s\n", ts, now.tv_nsec / 1000000,
		tags[lvl], line);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}
