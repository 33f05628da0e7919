/* nqrust-manager: the unprivileged half (DESIGN.md §2, §7). Configuration
 * and intent in a SQL database, the live backend registry in memory, the
 * public REST API on HTTP; privileged work is asked of the agent. */
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/debug_gate.h"
#include "common/fsutil.h"
#include "common/json_wipe.h"
#include "common/log.h"
#include "manager/auth/sessions.h"
#include "manager/manager.h"
#include "manager/routes/routes.h"
#include "manager/services/storage.h"
#include "manager/routes/routes_ui.h"
#include "manager/services/hostpool.h"
#include "manager/services/ha.h"
#include "manager/services/hosts.h"
#include "manager/services/metrics.h"
#include "manager/services/reconciler.h"
#include "manager/services/vms.h"

static int
start_metrics(struct manager *m, struct http_server **ret)
{
	struct http_server_opts o = {
		.routes = metrics_routes,
		.nroutes = metrics_routes_count,
		.tcp_host = m->cfg.metrics_host,
		.tcp_port = m->cfg.metrics_port,
		.userdata = m,
		.max_connections = 64,
		.header_timeout = m->cfg.header_timeout,
		.per_addr_connections = m->cfg.max_connections_per_address,
	};
	int r;

	*ret = NULL;
	if (!m->cfg.metrics_listen[0])
		return 0;
	r = http_server_start(&o, ret);
	if (r < 0) {
		log_error("cannot listen for metrics address=%s err=%d",
			m->cfg.metrics_listen, r);
		return r;
	}
	log_info("metrics listening host=%s port=%u", m->cfg.metrics_host,
		http_server_tcp_port(*ret));
	return 0;
}

static int
build_routes(struct http_route **ret, size_t *ret_n)
{
	const struct {
		const struct http_route *r;
		size_t n;
	} parts[] = {
		{ misc_routes, misc_routes_count }, { auth_routes, auth_routes_count },
		{ storage_routes, storage_routes_count },
		{ volume_routes, volume_routes_count }, { vm_routes, vm_routes_count },
		{ snapshot_routes, snapshot_routes_count },
		{ console_routes, console_routes_count },
		{ image_routes, image_routes_count }, { host_routes, host_routes_count },
		{ event_routes, event_routes_count }, { user_routes, user_routes_count },
		{ ui_routes, ui_routes_count }, /* prefix routes: keep last */
	};
	size_t total = 0, k = 0;
	struct http_route *v;

	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		total += parts[i].n;
	v = calloc(total, sizeof *v);
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(parts); i++)
		for (size_t j = 0; j < parts[i].n; j++)
			v[k++] = parts[i].r[j];
	*ret = v;
	*ret_n = total;
	return 0;
}

/* The agent token: first line of the file, whitespace trimmed. */
static int
read_token(const char *path, char *buf, size_t sz)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	ssize_t n;

	if (fd < 0)
		return negerrno();
	n = read(fd, buf, sz - 1);
	if (n < 0)
		return negerrno();
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return buf[0] ? 0 : -EINVAL;
}

/* Flags and config file, the log level, the state dir. */
static int
setup_config(struct manager *m, int argc, char **argv)
{
	char msg[512] = "";
	enum log_level lvl;
	int r;

	mgr_config_defaults(&m->cfg);
	/* Loads --config FILE first, then applies the other flags. */
	r = mgr_config_args(&m->cfg, argc, argv, msg, sizeof msg);
	if (r == 1) {
		mgr_config_usage(argv[0]);
		exit(0);
	}
	if (r >= 0)
		r = mgr_config_finish(&m->cfg, msg, sizeof msg);
	if (r < 0) {
		fprintf(stderr, "nqrust-manager: %s\n", msg);
		mgr_config_usage(argv[0]);
		return r;
	}
	if (log_level_parse(m->cfg.log_level, &lvl) < 0) {
		fprintf(stderr, "nqrust-manager: bad log-level\n");
		return -EINVAL;
	}
	log_set_level(lvl);
	umask(077);
	if ((r = fs_mkdir_p(m->cfg.state_dir, 0700)) < 0) {
		log_error("cannot create state dir path=%s err=%d", m->cfg.state_dir, r);
		return r;
	}
	return 0;
}

/* The agent client and the timeouts the backends use. */
static int
setup_agent(struct manager *m)
{
	char token[512] = "";
	int r;

	if (m->cfg.agent_token_file[0] &&
		(r = read_token(m->cfg.agent_token_file, token, sizeof token)) < 0) {
		log_error("cannot read agent token file path=%s err=%d",
			m->cfg.agent_token_file, r);
		return r;
	}
	r = agent_client_new(m->cfg.agent, token[0] ? token : NULL, &m->env.agent);
	explicit_bzero(token, sizeof token);
	if (r < 0)
		return r;
	m->env.call_timeout_ms = m->cfg.call_timeout_ms;
	m->env.provision_timeout_ms = (long)m->cfg.provision_timeout * 1000;
	m->env.status_timeout_ms = m->cfg.status_timeout_ms;
	return 0;
}

/* The key that seals agent tokens and share passwords (auth/sealed.h). */
static int
setup_secret_key(struct manager *m)
{
	char path[PATH_MAX + 16];
	int r;

	if (m->cfg.secret_key_file[0])
		snprintf(path, sizeof path, "%s", m->cfg.secret_key_file);
	else
		snprintf(path, sizeof path, "%s/secret.key", m->cfg.state_dir);
	r = sealed_key_load(path, &m->sealed);
	if (r < 0)
		log_error("cannot load the secret key path=%s err=%d (32 bytes, mode 0600)",
			path, r);
	return r;
}

static int
setup_db(struct manager *m)
{
	unsigned applied = 0;
	int r;

	r = db_open(m->cfg.database, &m->db);
	if (r < 0) {
		log_error("cannot open database err=%d", r);
		return r;
	}
	r = db_migrate(m->db, db_migrations, db_migrations_count, &applied);
	if (r < 0) {
		log_error("database migration failed err=%d", r);
		return r;
	}
	log_info("database ready engine=%s migrations_applied=%u", db_engine(m->db),
		applied);
	return 0;
}

/* Login throttles, argon2id slots, the dummy hash, the first admin. */
static int
setup_auth(struct manager *m)
{
	char junk[AUTH_TOKEN_LEN + 1];
	int r;

	m->rl_user = calloc(1, sizeof *m->rl_user);
	m->rl_addr = calloc(1, sizeof *m->rl_addr);
	if (!m->rl_user || !m->rl_addr)
		return -ENOMEM;
	ratelimit_init(m->rl_user, m->cfg.login_max_failures, m->cfg.login_window,
		m->cfg.login_lockout);
	ratelimit_init(m->rl_addr, m->cfg.login_max_failures * 4, m->cfg.login_window,
		m->cfg.login_lockout);
	pthread_mutex_init(&m->rl_lock, NULL);
	sem_init(&m->hash_slots, 0, 2);
	/* A real argon2id hash of a random string, so that failed logins for
	 * unknown users cost as much as for known ones. */
	auth_new_token(junk);
	r = auth_hash_password(junk, strlen(junk), m->dummy_hash);
	if (r < 0)
		return r;
	r = auth_bootstrap(m);
	if (r < 0)
		log_error("cannot create the first user err=%d", r);
	return r;
}

static int
setup(struct manager *m, int argc, char **argv)
{
	int r;

	r = setup_config(m, argc, argv);
	if (r < 0)
		return r;
	if (auth_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return -EIO;
	if ((r = setup_agent(m)) < 0 || (r = setup_secret_key(m)) < 0 ||
		(r = setup_db(m)) < 0 || (r = setup_auth(m)) < 0)
		return r;
	(void)ui_init(&m->cfg);
	r = registry_new(&m->reg);
	if (r >= 0)
		r = storage_load(m);
	if (r < 0) {
		log_error("cannot load backends err=%d", r);
		return r;
	}
	r = hosts_ensure_local(m);
	if (r < 0)
		log_error("cannot record the local host err=%d", r);
	return r;
}

/* The background loops: status refresher, VM state reconciler, recovery
 * of interrupted operations (run-once work checks the lock itself). */
static int
start_background(struct manager *m)
{
	int r = storage_refresher_start(m);

	if (r < 0) {
		log_error("cannot start the status refresher err=%d", r);
		return r;
	}
	r = reconciler_start(m);
	if (r < 0)
		log_error("cannot start the VM state reconciler err=%d", r);
	r = ha_start(m);
	if (r < 0)
		log_error("cannot start the HA loop err=%d", r);
	r = vms_recover_start(m);
	if (r < 0)
		log_error("cannot start the recovery of interrupted operations err=%d", r);
	return 0;
}

int
main(int argc, char **argv)
{
	static struct manager m;
	struct http_server *srv = NULL, *msrv = NULL;
	struct http_route *routes = NULL;
	size_t nroutes = 0;
	sigset_t sigs;
	int sig, r;

	json_wipe_install(); /* before any jansson allocation */
	/* Block the stop signals before any thread exists; main waits for
	 * them with sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	r = setup(&m, argc, argv);
	if (r < 0)
		return 1;
	r = build_routes(&routes, &nroutes);
	if (r < 0)
		return 1;
	struct http_server_opts o = {
		.routes = routes,
		.nroutes = nroutes,
		.tcp_host = m.cfg.listen_host,
		.tcp_port = m.cfg.listen_port,
		.auth = mgr_auth_hook,
		.userdata = &m,
		.max_connections = m.cfg.max_connections,
		.header_timeout = m.cfg.header_timeout,
		.per_addr_connections = m.cfg.max_connections_per_address,
		.observe = metrics_http_observe,
	};
	r = http_server_start(&o, &srv);
	if (r < 0) {
		log_error("cannot listen address=%s err=%d", m.cfg.listen, r);
		return 1;
	}
	if (start_metrics(&m, &msrv) < 0) {
		http_server_stop(srv);
		return 1;
	}
	if (start_background(&m) < 0) {
		http_server_stop(msrv);
		http_server_stop(srv);
		return 1;
	}
	if (debug_gate_enabled())
		log_warn("NQRUST_DEBUG_GATE_DIR is set: test pause points are armed");
	log_info("listening host=%s port=%u agent=%s", m.cfg.listen_host,
		http_server_tcp_port(srv), m.cfg.agent);

	while (sigwait(&sigs, &sig) == 0)
		if (sig == SIGTERM || sig == SIGINT)
			break;
	log_info("stopping signal=%d", sig);
	http_server_stop(msrv);
	http_server_stop(srv);
	vms_wait_idle();
	storage_refresher_stop(&m);
	reconciler_stop(&m);
	ha_stop(&m);
	vms_recover_stop(&m);
	vms_list_cache_clear();
	registry_free(m.reg);
	db_close(m.db);
	hostpool_drop(NULL);
	agent_client_free(m.env.agent);
	free(m.rl_user);
	free(m.rl_addr);
	free(routes);
	curl_global_cleanup();
	return 0;
}
