/* The VM console through the manager (routes_console.c, console_ws.c):
 * the agent of the VM's host is asked over the agent link (libcurl). */
#pragma once

#include <stdbool.h>

#include "common/http_server.h"
#include "manager/backends/backend.h"

struct manager;

#define CONSOLE_INPUT_MAX 4096
#define CONSOLE_TAIL_DEFAULT 65536
#define CONSOLE_TAIL_MAX (1024 * 1024)

/* The agent environment of VM id's host into *env (hosts_env_release);
 * on failure the error is in resp. */
int console_env(struct manager *m, const char *id, struct backend_env *env,
	struct http_response *resp);
/* Raw bytes to the VM's serial port through its agent. */
int console_send_input(const struct backend_env *env, const char *id, const void *buf,
	size_t len, struct nq_error *err);

/* The WebSocket session of one client: bridges the agent's console stream
 * to the client and (may_type) the client's frames to the serial port. */
struct console_session;
/* The session for a client of VM id, or NULL with resp filled when the
 * VM already has its maximum of console clients (429). Takes env. */
struct console_session *console_session_new(struct manager *m, const char *id,
	struct backend_env *env, bool may_type, unsigned tail, struct http_response *resp);
/* http_upgrade_fn for a session. */
void console_session_run(void *ctx, int fd, const char *extra, size_t n,
	const bool *stopping);
