/* nqrust-manager settings: one declarative table, read from a config file
 * ("key = value" lines, '#' comments; keys are the long flag names) and
 * then from the command line, which wins. Nothing secret lives here: the
 * agent token is read from --agent-token-file, the admin password from the
 * environment. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

struct mgr_config {
	char listen[300];      /* HOST:PORT */
	char listen_host[256]; /* derived from listen */
	unsigned listen_port;  /* derived from listen */
	char database[2048];   /* "" → sqlite:<state_dir>/manager.db */
	char state_dir[PATH_MAX];
	char agent[PATH_MAX + 8]; /* unix:PATH or http://HOST:PORT */
	char agent_token_file[PATH_MAX];
	char secret_key_file[PATH_MAX]; /* "" → <state_dir>/secret.key */
	char log_level[16];
	char web_dir[PATH_MAX]; /* "" → <binary dir>/../web, else /usr/share/nqrust/web */
	char docs_dir[PATH_MAX];     /* "" → <web-dir>/../docs */
	unsigned refresh_interval;   /* seconds between status refreshes */
	unsigned reconcile_interval; /* seconds between VM state polls (fallback) */
	unsigned ha_interval;        /* seconds between HA rounds */
	unsigned status_timeout_ms;  /* per capacity check */
	unsigned call_timeout_ms;    /* per mount/probe/volume call */
	unsigned provision_timeout;  /* seconds for one volume clone */
	unsigned token_ttl;          /* seconds */
	unsigned login_max_failures;
	unsigned login_window;    /* seconds */
	unsigned login_lockout;   /* seconds */
	unsigned header_timeout;  /* seconds for a client to send its request */
	unsigned max_connections; /* HTTP connections in all */
	unsigned max_connections_per_address;
	unsigned events_retention_days; /* events older than this are trimmed */
	unsigned events_max_rows;       /* and at most this many are kept */
	char metrics_listen[300]; /* "" or HOST:PORT serving /metrics without a token */
	char metrics_host[256];   /* derived from metrics_listen */
	unsigned metrics_port;
};

void mgr_config_defaults(struct mgr_config *c);
/* Apply one setting by key; -EINVAL (with msg) for an unknown key or a bad
 * value. */
int mgr_config_set(struct mgr_config *c, const char *key, const char *value, char *msg,
	size_t msgsz);
/* Load a config file; -errno or -EINVAL with msg naming the line. */
int mgr_config_load(struct mgr_config *c, const char *path, char *msg, size_t msgsz);
/* Parse argv: a --config FILE is loaded first, then the other flags win.
 * Returns 1 when --help was asked for, 0 on success, -EINVAL with msg. */
int mgr_config_args(struct mgr_config *c, int argc, char **argv, char *msg, size_t msgsz);
/* Fill derived fields (listen host/port, database). */
int mgr_config_finish(struct mgr_config *c, char *msg, size_t msgsz);
void mgr_config_usage(const char *argv0);
