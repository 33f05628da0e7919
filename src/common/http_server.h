/* HTTP server wrapper on libmicrohttpd: a route table with {param} path
 * segments, JSON bodies with a size cap, errors in the contract shape
 * {"error":{"code","message","field"}}, unix-socket and TCP listeners,
 * and an authorisation hook run before any handler.
 *
 * Order of checks per request: route match (404/405), auth hook (401/403),
 * content type and body cap (415/413), then the handler. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/nq_error.h"

#define HTTP_MAX_PARAMS 4
#define HTTP_BODY_MAX_DEFAULT (64 * 1024)
#define HTTP_AUTH_USER_MAX 65 /* with the NUL */
#define HTTP_AUTH_ROLE_MAX 16

struct http_request {
	const char *method;
	const char *path;
	const char *params[HTTP_MAX_PARAMS]; /* {param} segments, in order */
	unsigned nparams;
	const char *body; /* NUL-terminated, may be NULL when empty */
	size_t body_len;
	void *conn; /* struct MHD_Connection * */
	bool via_unix;
	uid_t peer_uid; /* valid when via_unix (SO_PEERCRED) */
	gid_t peer_gid;
	void *userdata; /* server-wide, from http_server_opts */
	const void *route_data;
	unsigned route_flags; /* the matched route's ROUTE_* flags */
	/* Who is asking, as the auth hook established it (the hook fills them;
	 * the server copies them into the request the handler gets). Empty
	 * when the route needs no auth or the server has no hook. Manager:
	 * the user's name and role ("admin" or "viewer"). */
	char auth_user[HTTP_AUTH_USER_MAX];
	char auth_role[HTTP_AUTH_ROLE_MAX];
};

/* A connection taken over after "101 Switching Protocols" (WebSocket):
 * runs in its own thread with the socket (blocking), the bytes the client
 * sent after its request (extra, n), and a flag that turns true when the
 * server stops (return soon after). The server closes fd afterwards; fn
 * frees ctx. */
typedef void (*http_upgrade_fn)(void *ctx, int fd, const char *extra, size_t n,
	const bool *stopping);

/* What a handler produces. The body is owned by the response. */
struct http_response {
	int status;
	char *body; /* owned */
	size_t body_len;
	const char *content_type;
	char *extra_headers; /* owned, "Name: value\n" lines, may be NULL */
	/* Set (with status 101 and the Upgrade header in extra_headers) to
	 * take the connection over; ctx is fn's (fn frees it). */
	http_upgrade_fn upgrade;
	void *upgrade_ctx;
};

typedef void (*http_handler_fn)(struct http_request *req, struct http_response *resp);
/* Return 0 to let the request through; otherwise fill resp (401/403). */
typedef int (*http_auth_fn)(struct http_request *req, struct http_response *resp);

enum {
	ROUTE_SENSITIVE = 1 << 0, /* body never logged, even on error */
	ROUTE_NO_AUTH = 1 << 1,   /* auth hook skipped (login, healthz) */
	ROUTE_RAW_BODY = 1 << 2,  /* body need not be JSON */
	ROUTE_PREFIX = 1 << 3,    /* pattern matches every path starting with it
				     (no {params}); list such routes last */
	ROUTE_ADMIN = 1 << 4,     /* the auth hook admits administrators only
				     (manager: even to GET) */
};

struct http_route {
	const char *method;  /* "GET", "POST", … */
	const char *pattern; /* "/v1/storage/smb/volumes/{id}/{vid}" */
	http_handler_fn handler;
	unsigned flags;
	size_t body_max; /* 0: HTTP_BODY_MAX_DEFAULT */
	const void *data;
};

struct http_server_opts {
	const struct http_route *routes;
	size_t nroutes;
	const char *unix_path; /* NULL: none; socket created with unix_mode */
	mode_t unix_mode;
	const char *tcp_host; /* NULL: none */
	unsigned tcp_port;
	http_auth_fn auth; /* NULL: everyone */
	void *userdata;
	unsigned max_connections;      /* 0: HTTP_MAX_CONNECTIONS_DEFAULT */
	unsigned header_timeout;       /* seconds; 0: HTTP_GUARD_HEADER_TIMEOUT_DEFAULT */
	unsigned per_addr_connections; /* TCP, per source address; 0: default */
	/* TLS on the TCP listener (the unix socket stays plain): PEM texts,
	 * both or neither. Copied; the server wipes its copy of the key when
	 * it stops. Needs a libmicrohttpd built with TLS (-EPROTONOSUPPORT). */
	const char *tls_cert_pem;
	const char *tls_key_pem;
	/* Called once per answered request (NULL: none) with the matched
	 * route's pattern (NULL when no route matched), never the raw path:
	 * request metrics must not carry ids. Must not block. */
	void (*observe)(void *userdata, const char *method, const char *pattern,
		int status);
};

/* Listener limits (http_guard.h explains the header timeout and the
 * per-address cap). */
#define HTTP_MAX_CONNECTIONS_DEFAULT 1024

struct http_server;

/* True when this libmicrohttpd can serve TLS (MHD_FEATURE_TLS). */
bool http_server_tls_supported(void);
int http_server_start(const struct http_server_opts *o, struct http_server **ret);
/* The bound TCP port (useful with port 0). */
unsigned http_server_tcp_port(const struct http_server *s);
/* Upgraded connections running now (http_upgrade.c). */
unsigned http_upgrades_active(void);
/* Stop listening, wait for in-flight requests and upgraded connections
 * (their stopping flag turns true), free. NULL-safe. */
void http_server_stop(struct http_server *s);

/* Response helpers. json is stolen (decref'd). */
void http_reply_json(struct http_response *r, int status, json_t *json);
void http_reply_error(struct http_response *r, const struct nq_error *err);
/* Shorthand: code/field/message without a struct at the call site. */
void http_reply_errorf(struct http_response *r, const char *code, const char *field,
	const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void http_reply_empty(struct http_response *r, int status);
/* Request header value (case-insensitive name) or NULL. */
const char *http_header(const struct http_request *req, const char *name);
/* Query-string argument (?name=value, decoded) or NULL when absent. */
const char *http_query(const struct http_request *req, const char *name);

/* Parse req->body as a JSON object with JSON_REJECT_DUPLICATES; only keys
 * in `allowed` (NULL-terminated) are accepted. On failure fills err
 * (invalid_json / unknown_field with the field named) and returns -EINVAL.
 * Caller owns *ret. Typed member access: common/json_util.h. */
/* allowed NULL: every key passes (the caller parses the object against its
 * own table and refuses unknown keys there). */
int http_parse_object(const struct http_request *req, const char *const *allowed,
	json_t **ret, struct nq_error *err);

/* The user (auth hook's auth_user) whose request the calling thread is
 * handling right now, or "" outside a handler or for an anonymous one. */
const char *http_current_user(void);
/* A worker thread doing work a request asked for records it as that
 * request's user (http_current_user in the worker). */
void http_set_current_user(const char *user);
