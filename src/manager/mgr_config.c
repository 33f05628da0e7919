/* See mgr_config.h. */
#include "manager/mgr_config.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/macro.h"

#define STR(f, d, h)                                                                      \
	{                                                                                 \
		.name = #f, .type = CFG_STRBUF, .offset = offsetof(struct mgr_config, f), \
		.help = h, .size = sizeof(((struct mgr_config *)0)->f), .def = d          \
	}
#define UINT(f, lo, hi, d, h)                                                             \
	{                                                                                 \
		.name = #f, .type = CFG_UINT, .offset = offsetof(struct mgr_config, f),   \
		.help = h, .min = lo, .max = hi, .def = d                                 \
	}
/* The manager's settings: flags (--state-dir) and config file keys
 * (state-dir or state_dir) come from this one table, parsed by
 * src/common/config.c like the agent's. */
static const struct config_entry opts[] = {
	STR(listen, "127.0.0.1:18080", "HOST:PORT to serve the API on (127.0.0.1:18080)"),
	STR(database, NULL, "sqlite:PATH or postgres://… (sqlite:<state-dir>/manager.db)"),
	STR(state_dir, "/var/lib/nqrust/manager",
		"state directory (/var/lib/nqrust/manager)"),
	STR(agent, "unix:/run/nqrust/agent.sock",
		"unix:PATH or http://HOST:PORT (unix:/run/nqrust/agent.sock)"),
	STR(agent_token_file, NULL, "file holding the agent's bearer token (TCP)"),
	STR(secret_key_file, NULL,
		"key sealing agent tokens and share passwords in the database"
		" (<state-dir>/secret.key, created 0600; managers on one database share it)"),
	STR(log_level, "info", "debug|info|warn|error (info)"),
	STR(web_dir, NULL, "web UI files (<binary dir>/../web or /usr/share/nqrust/web)"),
	STR(docs_dir, NULL, "runbooks linked from the UI (<web-dir>/../docs)"),
	UINT(refresh_interval, 1, 3600, "5", "seconds between backend status checks (5)"),
	UINT(reconcile_interval, 1, 3600, "5",
		"seconds between VM state polls of a host when no long poll runs (5)"),
	UINT(ha_interval, 1, 3600, "5", "seconds between HA rounds (5)"),
	UINT(status_timeout_ms, 50, 60000, "1500", "timeout of one status check (1500)"),
	UINT(call_timeout_ms, 100, 600000, "60000",
		"timeout of mounts and volume calls (60000)"),
	UINT(provision_timeout, 10, 86400, "3600",
		"seconds one volume clone may take (3600)"),
	UINT(token_ttl, 60, 31536000, "43200", "API token lifetime in seconds (43200)"),
	UINT(login_max_failures, 1, 1000, "5", "failed logins before a lockout (5)"),
	UINT(login_window, 1, 86400, "60", "seconds in which failures count (60)"),
	UINT(login_lockout, 1, 86400, "60", "lockout in seconds (60)"),
	UINT(header_timeout, 1, 30, "15",
		"seconds a client has to send a complete request (15)"),
	UINT(max_connections, 16, 65536, "1024", "HTTP connections in all (1024)"),
	UINT(max_connections_per_address, 2, 65536, "32",
		"HTTP connections per client address; idle ones are evicted first (32)"),
	UINT(events_retention_days, 1, 36500, "90",
		"days the event log keeps an event (90)"),
	UINT(events_max_rows, 10, 100000000, "100000",
		"events the log keeps at most; the oldest go first (100000)"),
	STR(metrics_listen, NULL,
		"HOST:PORT serving GET /metrics without a token (off: /metrics needs a token)"),
};
#undef STR
#undef UINT

void
mgr_config_defaults(struct mgr_config *c)
{
	struct nq_error err = { 0 };
	int r;

	memset(c, 0, sizeof *c);
	/* The table's defaults are constants that pass its own checks. */
	r = config_defaults(opts, ARRAY_SIZE(opts), c, &err);
	assert(r == 0);
	(void)r;
}

static int
with_msg(int r, const struct nq_error *err, char *msg, size_t msgsz)
{
	if (r < 0)
		snprintf(msg, msgsz, "%s", err->message);
	return r;
}

int
mgr_config_set(struct mgr_config *c, const char *key, const char *value, char *msg,
	size_t msgsz)
{
	struct nq_error err = { 0 };

	return with_msg(config_set(opts, ARRAY_SIZE(opts), c, key, value, &err), &err, msg,
		msgsz);
}

int
mgr_config_load(struct mgr_config *c, const char *path, char *msg, size_t msgsz)
{
	struct nq_error err = { 0 };

	return with_msg(config_load_file(opts, ARRAY_SIZE(opts), c, path, &err), &err, msg,
		msgsz);
}

int
mgr_config_args(struct mgr_config *c, int argc, char **argv, char *msg, size_t msgsz)
{
	struct nq_error err = { 0 };

	return with_msg(config_parse_args(opts, ARRAY_SIZE(opts), c, argc, argv, &err),
		&err, msg, msgsz);
}

/* HOST:PORT or [V6]:PORT into host and port; name is the setting. */
static int
split_listen(const char *name, const char *v, char *host, size_t hostsz,
	unsigned *ret_port, char *msg, size_t msgsz)
{
	const char *colon = strrchr(v, ':');
	char *end = NULL;
	unsigned long port;

	if (!colon || colon == v) {
		snprintf(msg, msgsz, "%s must be HOST:PORT", name);
		return -EINVAL;
	}
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || port > 65535) {
		snprintf(msg, msgsz, "%s must be HOST:PORT with a port in 0..65535", name);
		return -EINVAL;
	}
	size_t hl = (size_t)(colon - v);
	const char *h = v;
	if (h[0] == '[' && colon[-1] == ']') { /* [::1]:port */
		h++;
		hl -= 2;
	}
	snprintf(host, hostsz, "%.*s", (int)hl, h);
	*ret_port = (unsigned)port;
	return 0;
}

int
mgr_config_finish(struct mgr_config *c, char *msg, size_t msgsz)
{
	int r = split_listen("listen", c->listen, c->listen_host, sizeof c->listen_host,
		&c->listen_port, msg, msgsz);

	if (r < 0)
		return r;
	if (c->metrics_listen[0] &&
		(r = split_listen("metrics-listen", c->metrics_listen, c->metrics_host,
			 sizeof c->metrics_host, &c->metrics_port, msg, msgsz)) < 0)
		return r;
	if (c->state_dir[0] != '/') {
		snprintf(msg, msgsz, "state-dir must be an absolute path");
		return -EINVAL;
	}
	if (!c->database[0] &&
		(size_t)snprintf(c->database, sizeof c->database, "sqlite:%s/manager.db",
			c->state_dir) >= sizeof c->database) {
		snprintf(msg, msgsz, "state-dir is too long");
		return -EINVAL;
	}
	if (strncmp(c->agent, "unix:/", 6) != 0 && strncmp(c->agent, "http://", 7) != 0 &&
		strncmp(c->agent, "https://", 8) != 0) {
		snprintf(msg, msgsz, "agent must be unix:/PATH or http://HOST:PORT");
		return -EINVAL;
	}
	return 0;
}

void
mgr_config_usage(const char *argv0)
{
	config_usage(opts, ARRAY_SIZE(opts), argv0, stderr);
}
