/* Declarative configuration: one table per program maps a setting name to
 * a field of its config struct, a type, and flags. The same names work as
 * `--name-with-dashes VALUE` flags and as `name = value` lines in a config
 * file (flags win). Values flagged CFG_SENSITIVE are never echoed back. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

enum config_type { CFG_STRING, CFG_UINT, CFG_BOOL };
enum { CFG_SENSITIVE = 1 << 0 };

struct config_entry {
	const char *name;    /* "mount_root"; flag "--mount-root" */
	enum config_type type;
	size_t offset;       /* offsetof(struct X, field): char *, unsigned, bool */
	unsigned flags;
	const char *help;
	/* Optional extra check of the raw value; fills err, returns -EINVAL. */
	int (*check)(const char *name, const char *value, struct nq_error *err);
};

int config_set(const struct config_entry *t, size_t n, void *obj,
	const char *name, const char *value, struct nq_error *err);
/* `name = value` lines; '#' starts a comment; blank lines ignored. */
int config_load_file(const struct config_entry *t, size_t n, void *obj,
	const char *path, struct nq_error *err);
/* Parse argv: --config FILE is loaded first, then every other flag is
 * applied. --help prints usage to stdout and returns 1. */
int config_parse_args(const struct config_entry *t, size_t n, void *obj,
	int argc, char **argv, const char *progname, struct nq_error *err);
/* Free every CFG_STRING field. */
void config_release(const struct config_entry *t, size_t n, void *obj);
