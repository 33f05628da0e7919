/* Connection guard for the HTTP server: defends a listener against
 * clients that hold connections without using them.
 *
 * - Header timeout: a connection must deliver a complete request (headers
 *   and body) within header_timeout seconds of opening or of finishing its
 *   previous request; otherwise it is shut down. A request whose handler
 *   runs (a slow clone) is never cut; a response the client does not read
 *   is cut after HTTP_GUARD_RESPONSE_TIMEOUT seconds.
 * - Per-address cap: at most per_addr connections from one source address
 *   (TCP only). A new connection over the cap evicts that address's oldest
 *   connection that is waiting for a request, so idle sockets cannot lock
 *   out a real client from the same address; when every one of them is
 *   inside a request, the new connection is refused.
 *
 * Connections are shut down (shutdown(2)), never closed here: the fd
 * belongs to libmicrohttpd, which is notified (CLOSED) before it closes
 * the fd, and the guard forgets the connection under its lock in that
 * notification. Thread-safe; one guard per server. */
#pragma once

#include <microhttpd.h>
#include <stdbool.h>
#include <sys/socket.h>

#define HTTP_GUARD_HEADER_TIMEOUT_DEFAULT 15
#define HTTP_GUARD_PER_ADDR_DEFAULT 32
#define HTTP_GUARD_RESPONSE_TIMEOUT 300

struct http_guard;

#if MHD_VERSION < 0x00097002
typedef int http_mhd_result;
#else
typedef enum MHD_Result http_mhd_result;
#endif

enum http_conn_phase {
	HTTP_PHASE_WAITING,    /* no request yet, or between requests */
	HTTP_PHASE_RECEIVING,  /* headers in, body arriving */
	HTTP_PHASE_HANDLING,   /* the handler runs: no deadline */
	HTTP_PHASE_RESPONDING, /* reply queued, being sent */
};

/* header_timeout in seconds, per_addr connections per source address;
 * 0 picks the defaults above. Starts the watchdog thread. */
int http_guard_new(unsigned header_timeout, unsigned per_addr, struct http_guard **ret);
/* Stops the watchdog; call after every listener using it has stopped.
 * NULL-safe. */
void http_guard_free(struct http_guard *g);

/* MHD_OPTION_ACCEPT_POLICY callback (cls: the guard). */
http_mhd_result http_guard_accept(void *cls, const struct sockaddr *addr,
	socklen_t addrlen);
/* MHD_OPTION_NOTIFY_CONNECTION callback (cls: the guard). */
void http_guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
	enum MHD_ConnectionNotificationCode toe);
/* Move conn to phase (from the request callbacks). */
void http_guard_phase(struct MHD_Connection *conn, enum http_conn_phase phase);

/* Source address of a socket address as text ("unix" for AF_UNIX);
 * IPv4-mapped IPv6 addresses are shown as IPv4. */
void http_addr_text(const struct sockaddr *sa, char *buf, size_t sz);
