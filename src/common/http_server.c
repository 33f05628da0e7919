/* libmicrohttpd wrapper: see http_server.h for the order of checks. */
#include "common/http_server.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "common/http_guard.h"
#include "common/http_upgrade.h"
#include "common/log.h"
#include "common/nq_buf.h"

#if MHD_VERSION < 0x00097002
typedef int MHD_RESULT;
#else
typedef enum MHD_Result MHD_RESULT;
#endif

struct listener {
	struct http_server *srv;
	struct MHD_Daemon *d;
	int fd;
	bool is_unix;
	unsigned port;
};

struct http_server {
	struct http_server_opts o;
	struct listener unix_l, tcp_l;
	char *unix_path;
	char *tls_cert, *tls_key; /* owned copies; the key is wiped at stop */
	struct http_guard *guard;
};

/* TLS 1.2 and 1.3 only. */
#define TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Per-request state, allocated on the first callback. */
struct req_state {
	const struct http_route *route;
	int early_status; /* 404/405/401/413/415 decided before the body */
	struct http_response early;
	char *path; /* owned copy the params point into */
	const char *params[HTTP_MAX_PARAMS];
	unsigned nparams;
	struct nq_buf body; /* capped at the route's body_max; wiped: may
			       hold a password; overflow: 413 */
	struct timespec start;
	char auth_user[HTTP_AUTH_USER_MAX]; /* from the auth hook */
	char auth_role[HTTP_AUTH_ROLE_MAX];
	struct http_upgrade_job *upgrade; /* a 101 queued: given back at the end */
};

/* ---- routing ------------------------------------------------------------ */

/* Match path against pattern segment by segment; {x} matches one non-empty
 * segment. On a match the params are NUL-terminated in place in `path`. */
static bool
route_match(const char *pattern, char *path, const char **params, unsigned *nparams)
{
	size_t lens[HTTP_MAX_PARAMS];
	const char *p = pattern;
	char *s = path;
	unsigned n = 0;

	for (;;) {
		if (*p == '\0' && *s == '\0')
			break;
		if (*p != '/' || *s != '/')
			return false;
		p++, s++;
		size_t plen = strcspn(p, "/"), slen = strcspn(s, "/");

		if (*p == '{') {
			if (slen == 0 || n >= HTTP_MAX_PARAMS)
				return false;
			params[n] = s;
			lens[n++] = slen;
		} else if (plen != slen || strncmp(p, s, plen) != 0) {
			return false;
		}
		p += plen, s += slen;
	}
	for (unsigned k = 0; k < n; k++)
		((char *)params[k])[lens[k]] = '\0';
	*nparams = n;
	return true;
}

static const struct http_route *
find_route(const struct http_server *srv, const char *method, const char *url,
	struct req_state *st, bool *ret_path_known)
{
	*ret_path_known = false;
	for (size_t i = 0; i < srv->o.nroutes; i++) {
		const struct http_route *rt = &srv->o.routes[i];
		_cleanup_free_ char *copy = strdup(url);
		unsigned n = 0;

		if (!copy)
			return NULL;
		if (rt->flags & ROUTE_PREFIX) {
			if (strncmp(url, rt->pattern, strlen(rt->pattern)) != 0)
				continue;
		} else if (!route_match(rt->pattern, copy, st->params, &n)) {
			continue;
		}
		*ret_path_known = true;
		if (strcmp(rt->method, method) != 0)
			continue;
		st->nparams = n;
		st->path = TAKE_PTR(copy);
		return rt;
	}
	return NULL;
}

/* ---- MHD glue ----------------------------------------------------------- */

static MHD_RESULT
queue(struct MHD_Connection *conn, struct http_response *r, struct http_upgrade_job **job)
{
	struct MHD_Response *resp;
	MHD_RESULT ret;

	resp = r->upgrade
		       ? http_upgrade_response(r, job)
		       : MHD_create_response_from_buffer(r->body_len, r->body,
				 r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	if (!r->upgrade)
		r->body = NULL; /* now owned by MHD */
	if (r->content_type)
		MHD_add_response_header(resp, "Content-Type", r->content_type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (r->extra_headers) {
		char *save = NULL;
		for (char *line = strtok_r(r->extra_headers, "\n", &save); line;
			line = strtok_r(NULL, "\n", &save)) {
			char *colon = strchr(line, ':');
			if (!colon)
				continue;
			*colon = '\0';
			const char *v = colon + 1;
			while (*v == ' ')
				v++;
			MHD_add_response_header(resp, line, v);
		}
	}
	ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void
response_release(struct http_response *r)
{
	free(r->body);
	free(r->extra_headers);
	r->body = r->extra_headers = NULL;
	if (r->upgrade && r->upgrade_ctx) /* never handed over: fd -1 frees it */
		r->upgrade(r->upgrade_ctx, -1, NULL, 0, NULL);
	r->upgrade_ctx = NULL;
}

static bool
content_type_is_json(struct MHD_Connection *conn)
{
	const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");

	if (!ct)
		return false;
	size_t n = strcspn(ct, "; ");
	return n == strlen("application/json") &&
	       strncasecmp(ct, "application/json", n) == 0;
}

static void
fill_peer(struct http_request *req, struct MHD_Connection *conn, bool is_unix)
{
	const union MHD_ConnectionInfo *ci;
	struct ucred cred;
	socklen_t len = sizeof cred;

	req->via_unix = is_unix;
	req->peer_uid = (uid_t)-1;
	req->peer_gid = (gid_t)-1;
	if (!is_unix)
		return;
	ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0)
		req->peer_uid = cred.uid, req->peer_gid = cred.gid;
}

/* First call for a request: route it and decide 404/405/401/413 before
 * any body is read; the decision is replied once the body is drained. */
static MHD_RESULT
begin_request(struct listener *l, struct MHD_Connection *conn, const char *url,
	const char *method, void **con_cls)
{
	struct http_server *srv = l->srv;
	struct req_state *st;
	bool path_known;

	st = calloc(1, sizeof *st);
	if (!st)
		return MHD_NO;
	*con_cls = st;
	http_guard_phase(conn, HTTP_PHASE_RECEIVING);
	clock_gettime(CLOCK_MONOTONIC, &st->start);
	st->route = find_route(srv, method, url, st, &path_known);
	if (!st->route) {
		st->early_status = path_known ? 405 : 404;
		if (path_known)
			http_reply_errorf(&st->early, "method_not_allowed", NULL,
				"method %s is not allowed on this path", method);
		else
			http_reply_errorf(&st->early, "not_found", NULL,
				"no such endpoint");
		return MHD_YES;
	}
	nq_buf_init(&st->body,
		st->route->body_max ? st->route->body_max : HTTP_BODY_MAX_DEFAULT, true);
	struct http_request req = {
		.method = method,
		.path = url,
		.conn = conn,
		.userdata = srv->o.userdata,
		.route_data = st->route->data,
		.route_flags = st->route->flags,
	};
	fill_peer(&req, conn, l->is_unix);
	if (srv->o.auth && !(st->route->flags & ROUTE_NO_AUTH) &&
		srv->o.auth(&req, &st->early) != 0) {
		st->early_status = st->early.status ? st->early.status : 401;
		return MHD_YES;
	}
	memcpy(st->auth_user, req.auth_user, sizeof st->auth_user);
	memcpy(st->auth_role, req.auth_role, sizeof st->auth_role);
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		"Content-Length");
	if (cl && strtoull(cl, NULL, 10) > st->body.max) {
		st->early_status = 413;
		http_reply_errorf(&st->early, "body_too_large", NULL,
			"the request body exceeds %zu bytes", st->body.max);
	}
	return MHD_YES;
}

/* The signed-in user whose request this thread is handling, for records
 * made deep in services (the event log's actor); "" between requests. */
static _Thread_local char current_user[HTTP_AUTH_USER_MAX];

/* The whole body is in: the early decision, a body check, or the handler
 * fills *resp. */
static void
dispatch(struct listener *l, struct MHD_Connection *conn, const char *url,
	const char *method, struct req_state *st, struct http_response *resp)
{
	struct http_server *srv = l->srv;

	if (st->early_status) {
		*resp = st->early;
		memset(&st->early, 0, sizeof st->early);
		resp->status = st->early_status;
	} else if (st->body.overflow) {
		http_reply_errorf(resp, "body_too_large", NULL,
			"the request body exceeds %zu bytes", st->body.max);
	} else if (st->body.len && !(st->route->flags & ROUTE_RAW_BODY) &&
		   !content_type_is_json(conn)) {
		http_reply_errorf(resp, "unsupported_media_type", NULL,
			"the request body must be sent as application/json");
	} else {
		struct http_request req = {
			.method = method,
			.path = url,
			.nparams = st->nparams,
			.body = st->body.p,
			.body_len = st->body.len,
			.conn = conn,
			.userdata = srv->o.userdata,
			.route_data = st->route->data,
			.route_flags = st->route->flags,
		};
		memcpy(req.params, st->params, sizeof req.params);
		memcpy(req.auth_user, st->auth_user, sizeof req.auth_user);
		memcpy(req.auth_role, st->auth_role, sizeof req.auth_role);
		fill_peer(&req, conn, l->is_unix);
		http_reply_errorf(resp, "internal_error", NULL,
			"the handler produced no reply");
		snprintf(current_user, sizeof current_user, "%s", req.auth_user);
		st->route->handler(&req, resp);
		current_user[0] = '\0';
	}
}

const char *
http_current_user(void)
{
	return current_user;
}

void
http_set_current_user(const char *user)
{
	snprintf(current_user, sizeof current_user, "%s", user ? user : "");
}

static MHD_RESULT
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
	const char *version, const char *upload_data, size_t *upload_data_size,
	void **con_cls)
{
	struct listener *l = cls;
	struct req_state *st = *con_cls;
	(void)version;

	if (!st)
		return begin_request(l, conn, url, method, con_cls);
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (st->early_status || st->body.overflow)
			return MHD_YES;
		/* Past the cap: overflow is set and the rest is dropped. */
		if (nq_buf_add(&st->body, upload_data, n) == -ENOMEM)
			return MHD_NO;
		return MHD_YES;
	}

	/* Final call: the whole body is in. */
	struct http_response resp = { .status = 500 };
	MHD_RESULT ret;

	http_guard_phase(conn, HTTP_PHASE_HANDLING);
	dispatch(l, conn, url, method, st, &resp);
	nq_buf_release(&st->body); /* wiped: may hold a password */
	if (l->srv->o.observe)
		l->srv->o.observe(l->srv->o.userdata, method,
			st->route ? st->route->pattern : NULL, resp.status);

	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	long ms = (end.tv_sec - st->start.tv_sec) * 1000 +
		  (end.tv_nsec - st->start.tv_nsec) / 1000000;
	/* Only method, path and status: never a body, never a header. */
	log_emit(resp.status >= 500 ? LOG_LVL_WARN : LOG_LVL_DEBUG,
		"request method=%s path=%.200s status=%d ms=%ld", method, url, resp.status,
		ms);
	http_guard_phase(conn, HTTP_PHASE_RESPONDING);
	ret = queue(conn, &resp, &st->upgrade);
	response_release(&resp);
	return ret;
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
	enum MHD_RequestTerminationCode toe)
{
	struct req_state *st = *con_cls;
	(void)cls, (void)toe;

	/* Keep-alive: the next request gets a fresh header timeout. */
	http_guard_phase(conn, HTTP_PHASE_WAITING);
	if (!st)
		return;
	http_upgrade_request_done(st->upgrade);
	nq_buf_release(&st->body);
	response_release(&st->early);
	free(st->path);
	free(st);
	*con_cls = NULL;
}

static int
listen_unix(const char *path, mode_t mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat stt;
	_cleanup_close_ int fd = -1;

	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* Replace a stale socket, but never anything else at that path. */
	if (lstat(path, &stt) == 0) {
		if (!S_ISSOCK(stt.st_mode))
			return -EEXIST;
		if (unlink(path) < 0)
			return negerrno();
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return negerrno();
	mode_t old = umask(0177);
	int r = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (r < 0)
		return negerrno();
	if (chmod(path, mode) < 0 || listen(fd, 512) < 0)
		return negerrno();
	return TAKE_FD(fd);
}

static int
listen_tcp(const char *host, unsigned port, unsigned *ret_port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res = NULL;
	char portstr[8];
	int fd = -1, r, one = 1;

	snprintf(portstr, sizeof portstr, "%u", port);
	r = getaddrinfo(host, portstr, &hints, &res);
	if (r != 0)
		return -EADDRNOTAVAIL;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 512) == 0)
			break;
		close(fd);
		fd = -1;
	}
	r = fd < 0 ? negerrno() : 0;
	freeaddrinfo(res);
	if (fd < 0)
		return r;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
		*ret_port = ntohs(
			ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						 : ((struct sockaddr_in *)&ss)->sin_port);
	return fd;
}

static int
start_listener(struct http_server *srv, struct listener *l, int fd, bool is_unix)
{
	unsigned maxc = srv->o.max_connections ? srv->o.max_connections
					       : HTTP_MAX_CONNECTIONS_DEFAULT;
	unsigned per_addr = srv->o.per_addr_connections ? srv->o.per_addr_connections
							: HTTP_GUARD_PER_ADDR_DEFAULT;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			 MHD_USE_ITC | MHD_ALLOW_UPGRADE;
	struct MHD_OptionItem opts[10] = {
		{ MHD_OPTION_LISTEN_SOCKET, (intptr_t)fd, NULL },
		{ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, l },
		{ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)http_guard_notify, srv->guard },
		{ MHD_OPTION_CONNECTION_LIMIT, maxc, NULL },
		/* MHD's own idle timeout would also cut a reply whose handler ran
		 * longer than it (a slow clone): the guard times connections. */
		{ MHD_OPTION_CONNECTION_TIMEOUT, 0, NULL },
	};
	size_t n = 5;

	/* A backstop only: the guard caps per address and evicts first. */
	if (!is_unix)
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_PER_IP_CONNECTION_LIMIT,
			per_addr + 64, NULL };
	if (!is_unix && srv->tls_cert) {
		flags |= MHD_USE_TLS;
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0,
			srv->tls_cert };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0,
			srv->tls_key };
		opts[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_PRIORITIES, 0,
			(void *)TLS_PRIORITIES };
	}
	opts[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };

	l->srv = srv;
	l->fd = fd;
	l->is_unix = is_unix;
	l->d = MHD_start_daemon(flags, 0, is_unix ? NULL : http_guard_accept, srv->guard,
		on_request, l, MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	return l->d ? 0 : -EIO;
}

bool
http_server_tls_supported(void)
{
	return MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES;
}

/* Own copies of the PEM texts, so the caller may wipe its own. */
static int
copy_tls(struct http_server *srv, const struct http_server_opts *o)
{
	if (!o->tls_cert_pem && !o->tls_key_pem)
		return 0;
	if (!o->tls_cert_pem || !o->tls_key_pem)
		return -EINVAL;
	if (!http_server_tls_supported())
		return -EPROTONOSUPPORT;
	srv->tls_cert = strdup(o->tls_cert_pem);
	srv->tls_key = strdup(o->tls_key_pem);
	srv->o.tls_cert_pem = srv->o.tls_key_pem = NULL; /* the caller's */
	return srv->tls_cert && srv->tls_key ? 0 : -ENOMEM;
}

int
http_server_start(const struct http_server_opts *o, struct http_server **ret)
{
	struct http_server *srv = calloc(1, sizeof *srv);
	int fd, r;

	if (!srv)
		return -ENOMEM;
	srv->o = *o;
	srv->unix_l.fd = srv->tcp_l.fd = -1;
	r = http_guard_new(o->header_timeout, o->per_addr_connections, &srv->guard);
	if (r < 0) {
		free(srv);
		return r;
	}
	if ((r = copy_tls(srv, o)) < 0)
		goto fail;
	if (o->unix_path) {
		srv->unix_path = strdup(o->unix_path);
		fd = listen_unix(o->unix_path, o->unix_mode ? o->unix_mode : 0660);
		if (fd < 0 || !srv->unix_path) {
			r = fd < 0 ? fd : -ENOMEM;
			goto fail;
		}
		r = start_listener(srv, &srv->unix_l, fd, true);
		if (r < 0)
			goto fail;
	}
	if (o->tcp_host) {
		fd = listen_tcp(o->tcp_host, o->tcp_port, &srv->tcp_l.port);
		if (fd < 0) {
			r = fd;
			goto fail;
		}
		r = start_listener(srv, &srv->tcp_l, fd, false);
		if (r < 0)
			goto fail;
	}
	*ret = srv;
	return 0;
fail:
	http_server_stop(srv);
	return r;
}

unsigned
http_server_tcp_port(const struct http_server *s)
{
	return s->tcp_l.port;
}

static void
stop_listener(struct listener *l)
{
	/* MHD closes a listen socket it was given when it stops. */
	if (l->d)
		MHD_stop_daemon(l->d);
	else if (l->fd >= 0)
		close(l->fd);
	l->d = NULL;
	l->fd = -1;
}

void
http_server_stop(struct http_server *s)
{
	if (!s)
		return;
	http_upgrades_stop();
	stop_listener(&s->unix_l);
	stop_listener(&s->tcp_l);
	http_guard_free(s->guard);
	if (s->unix_path)
		unlink(s->unix_path);
	free(s->unix_path);
	free(s->tls_cert);
	if (s->tls_key) {
		explicit_bzero(s->tls_key, strlen(s->tls_key));
		free(s->tls_key);
	}
	free(s);
}
