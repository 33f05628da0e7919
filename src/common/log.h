/* Logging to stderr: one line per event, "ts level msg key=value ...".
 *
 * There is deliberately no way to format a struct secret: secrets never reach
 * a log line. Library code logs at debug at most; the caller logs once. */
#pragma once

#include <stdbool.h>

#include "common/macro.h"

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR };

void log_set_level(enum log_level lvl);
/* Parse "debug|info|warn|error"; -EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *ret);
bool log_enabled(enum log_level lvl);

/* fmt is the message, then optional " key=value" pairs; values that may
 * contain spaces should be quoted by the caller with log_quote(). */
void log_emit(enum log_level lvl, const char *fmt, ...) _printf_(2, 3);

#define log_debug(...) log_emit(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_emit(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_emit(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_emit(LOG_LVL_ERROR, __VA_ARGS__)
