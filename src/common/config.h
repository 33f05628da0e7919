/* Declarative configuration: one table per program maps a setting name to
 * a field of its config struct, a type, and flags. The same names work as
 * `--name-with-dashes VALUE` flags and as `name = value` lines in a config
 * file (flags win). Values flagged CFG_SENSITIVE are never echoed back. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common/nq_error.h"

/* CFG_STRING: char * (owned, strdup'd); CFG_STRBUF: char[size] in place;
 * CFG_UINT: unsigned in [min, max] (max 0: no upper bound); CFG_BOOL. */
enum config_type { CFG_STRING, CFG_UINT, CFG_BOOL, CFG_STRBUF };
enum { CFG_SENSITIVE = 1 << 0 };

/* Names match with '-' and '_' interchangeable: "mount_root" is the flag
 * --mount-root and the file key mount_root or mount-root. */
struct config_entry {
	const char *name; /* "mount_root"; flag "--mount-root" */
	enum config_type type;
	size_t offset; /* offsetof(struct X, field) */
	unsigned flags;
	const char *help;
	/* Optional extra check of the raw value; fills err, returns -EINVAL. */
	int (*check)(const char *name, const char *value, struct nq_error *err);
	size_t size;       /* CFG_STRBUF: sizeof the array */
	unsigned min, max; /* CFG_UINT bounds */
	const char *def;   /* default value as text (NULL: none) */
};

int config_set(const struct config_entry *t, size_t n, void *obj, const char *name,
	const char *value, struct nq_error *err);
/* Set every setting that has a default to it, through config_set (so a
 * default is checked like any value). Call before loading a file or flags. */
int config_defaults(const struct config_entry *t, size_t n, void *obj,
	struct nq_error *err);
/* `name = value` lines; '#' starts a comment; blank lines ignored. */
int config_load_file(const struct config_entry *t, size_t n, void *obj, const char *path,
	struct nq_error *err);
/* Parse argv: --config FILE is loaded first, then every other flag is
 * applied. Returns 1 for --help/-h (print config_usage then). */
int config_parse_args(const struct config_entry *t, size_t n, void *obj, int argc,
	char **argv, struct nq_error *err);
/* "usage: PROG [--config FILE] [options]" and one line per setting. */
void config_usage(const struct config_entry *t, size_t n, const char *progname, FILE *out);
/* Free every CFG_STRING field. */
void config_release(const struct config_entry *t, size_t n, void *obj);
