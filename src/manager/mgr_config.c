/* See mgr_config.h. */
#include "mgr_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

enum opt_type { OPT_STR, OPT_UINT };

struct opt {
	const char *name;
	enum opt_type type;
	size_t off, size;
	unsigned min, max;
	const char *help;
};

#define S(field) offsetof(struct mgr_config, field), sizeof(((struct mgr_config *)0)->field)
static const struct opt opts[] = {
	{ "listen", OPT_STR, S(listen), 0, 0, "HOST:PORT to serve the API on (127.0.0.1:18080)" },
	{ "database", OPT_STR, S(database), 0, 0, "sqlite:PATH or postgres://… (sqlite:<state-dir>/manager.db)" },
	{ "state-dir", OPT_STR, S(state_dir), 0, 0, "state directory (/var/lib/nqrust/manager)" },
	{ "agent", OPT_STR, S(agent), 0, 0, "unix:PATH or http://HOST:PORT (unix:/run/nqrust/agent.sock)" },
	{ "agent-token-file", OPT_STR, S(agent_token_file), 0, 0, "file holding the agent's bearer token (TCP)" },
	{ "volumes-dir", OPT_STR, S(volumes_dir), 0, 0, "localfile backend root (<state-dir>/volumes)" },
	{ "log-level", OPT_STR, S(log_level), 0, 0, "debug|info|warn|error (info)" },
	{ "web-dir", OPT_STR, S(web_dir), 0, 0, "web UI files (<binary dir>/../web or /usr/share/nqrust/web)" },
	{ "docs-dir", OPT_STR, S(docs_dir), 0, 0, "runbooks linked from the UI (<web-dir>/../docs)" },
	{ "refresh-interval", OPT_UINT, S(refresh_interval), 1, 3600, "seconds between backend status checks (5)" },
	{ "status-timeout-ms", OPT_UINT, S(status_timeout_ms), 50, 60000, "timeout of one status check (1500)" },
	{ "call-timeout-ms", OPT_UINT, S(call_timeout_ms), 100, 600000, "timeout of mounts and volume calls (60000)" },
	{ "token-ttl", OPT_UINT, S(token_ttl), 60, 31536000, "API token lifetime in seconds (43200)" },
	{ "login-max-failures", OPT_UINT, S(login_max_failures), 1, 1000, "failed logins before a lockout (5)" },
	{ "login-window", OPT_UINT, S(login_window), 1, 86400, "seconds in which failures count (60)" },
	{ "login-lockout", OPT_UINT, S(login_lockout), 1, 86400, "lockout in seconds (60)" },
};
#undef S

void
mgr_config_defaults(struct mgr_config *c)
{
	memset(c, 0, sizeof *c);
	snprintf(c->listen, sizeof c->listen, "127.0.0.1:18080");
	snprintf(c->state_dir, sizeof c->state_dir, "/var/lib/nqrust/manager");
	snprintf(c->agent, sizeof c->agent, "unix:/run/nqrust/agent.sock");
	snprintf(c->log_level, sizeof c->log_level, "info");
	c->refresh_interval = 5;
	c->status_timeout_ms = 1500;
	c->call_timeout_ms = 60000;
	c->token_ttl = 43200;
	c->login_max_failures = 5;
	c->login_window = 60;
	c->login_lockout = 60;
}

int
mgr_config_set(struct mgr_config *c, const char *key, const char *value,
	char *msg, size_t msgsz)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		const struct opt *o = &opts[i];
		char *dst = (char *)c + o->off;

		if (strcmp(o->name, key) != 0)
			continue;
		if (o->type == OPT_STR) {
			if (strlen(value) >= o->size) {
				snprintf(msg, msgsz, "value of %s is too long", key);
				return -EINVAL;
			}
			memcpy(dst, value, strlen(value) + 1);
			return 0;
		}
		char *end = NULL;
		errno = 0;
		unsigned long v = strtoul(value, &end, 10);
		if (errno || !*value || *end || v < o->min || v > o->max) {
			snprintf(msg, msgsz, "%s must be an integer in %u..%u", key,
				o->min, o->max);
			return -EINVAL;
		}
		*(unsigned *)dst = (unsigned)v;
		return 0;
	}
	snprintf(msg, msgsz, "unknown setting '%.64s'", key);
	return -EINVAL;
}

static char *
trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

int
mgr_config_load(struct mgr_config *c, const char *path, char *msg, size_t msgsz)
{
	FILE *f = fopen(path, "re");
	char line[4096];
	unsigned lineno = 0;
	int r = 0;

	if (!f) {
		r = negerrno();
		snprintf(msg, msgsz, "cannot open config file %s", path);
		return r;
	}
	while (fgets(line, sizeof line, f)) {
		char *p = trim(line), *eq;

		lineno++;
		if (!*p || *p == '#')
			continue;
		eq = strchr(p, '=');
		if (!eq) {
			snprintf(msg, msgsz, "%s:%u: expected key = value", path, lineno);
			r = -EINVAL;
			break;
		}
		*eq = '\0';
		char sub[256];
		r = mgr_config_set(c, trim(p), trim(eq + 1), sub, sizeof sub);
		if (r < 0) {
			snprintf(msg, msgsz, "%s:%u: %s", path, lineno, sub);
			break;
		}
	}
	fclose(f);
	return r;
}

int
mgr_config_args(struct mgr_config *c, int argc, char **argv, char *msg, size_t msgsz)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val;
		char key[64];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			return 1;
		if (strncmp(a, "--", 2) != 0) {
			snprintf(msg, msgsz, "unexpected argument '%.64s'", a);
			return -EINVAL;
		}
		a += 2;
		const char *eq = strchr(a, '=');
		if (eq) {
			snprintf(key, sizeof key, "%.*s", (int)(eq - a), a);
			val = eq + 1;
		} else {
			snprintf(key, sizeof key, "%s", a);
			if (i + 1 >= argc) {
				snprintf(msg, msgsz, "--%s needs a value", key);
				return -EINVAL;
			}
			val = argv[++i];
		}
		if (strcmp(key, "config") == 0)
			continue; /* loaded before */
		int r = mgr_config_set(c, key, val, msg, msgsz);
		if (r < 0)
			return r;
	}
	return 0;
}

int
mgr_config_finish(struct mgr_config *c, char *msg, size_t msgsz)
{
	const char *colon = strrchr(c->listen, ':');
	char *end = NULL;
	unsigned long port;

	if (!colon || colon == c->listen) {
		snprintf(msg, msgsz, "listen must be HOST:PORT");
		return -EINVAL;
	}
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || port > 65535) {
		snprintf(msg, msgsz, "listen must be HOST:PORT with a port in 0..65535");
		return -EINVAL;
	}
	size_t hl = (size_t)(colon - c->listen);
	const char *h = c->listen;
	if (h[0] == '[' && colon[-1] == ']') { /* [::1]:port */
		h++;
		hl -= 2;
	}
	snprintf(c->listen_host, sizeof c->listen_host, "%.*s", (int)hl, h);
	c->listen_port = (unsigned)port;
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
	if (!c->volumes_dir[0] &&
	    (size_t)snprintf(c->volumes_dir, sizeof c->volumes_dir, "%s/volumes",
		    c->state_dir) >= sizeof c->volumes_dir) {
		snprintf(msg, msgsz, "state-dir is too long");
		return -EINVAL;
	}
	if (c->volumes_dir[0] != '/') {
		snprintf(msg, msgsz, "volumes-dir must be an absolute path");
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
	fprintf(stderr, "usage: %s [--config FILE] [--OPTION VALUE]...\n", argv0);
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		fprintf(stderr, "  --%-20s %s\n", opts[i].name, opts[i].help);
}
