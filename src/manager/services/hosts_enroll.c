/* Enrollment, draining and removal of hosts (hosts.h). Enrollment talks
 * to the agent over the pinned link: the fingerprint given, or the one the
 * agent presents (trust on first use), is checked during the handshake,
 * before the token is sent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/tls_fp.h"
#include "common/validate.h"
#include "manager/agent_tls.h"
#include "manager/auth/auth.h"
#include "manager/manager.h"
#include "manager/services/events.h"
#include "manager/services/hostpool.h"
#include "manager/services/hosts.h"
#include "manager/services/hosts_internal.h"
#include "manager/services/secrets.h"

#define ENROLL_TIMEOUT_MS 5000
#define URL_MAX 300

static int
check_url(const char *url, struct nq_error *err)
{
	const char *hp;

	if (!url || strncmp(url, "https://", 8) != 0)
		return nq_error_setr(err, -EINVAL, "invalid_field", "agent_url",
			"must be https://: the link carries a token");
	hp = url + 8;
	if (strlen(url) > URL_MAX || !*hp || !strchr(hp, ':') ||
		strspn(hp,
			"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-:[]") !=
			strlen(hp))
		return nq_error_setr(err, -EINVAL, "invalid_field", "agent_url",
			"must be https://HOST:PORT");
	return 0;
}

static int
check_token(const char *tok, struct nq_error *err)
{
	size_t n = tok ? strlen(tok) : 0;

	if (n < HOST_TOKEN_MIN || n > HOST_TOKEN_MAX)
		return nq_error_setr(err, -EINVAL, "invalid_field", "token",
			"must be %d to %d characters", HOST_TOKEN_MIN, HOST_TOKEN_MAX);
	for (size_t i = 0; i < n; i++)
		if (tok[i] < 0x21 || tok[i] > 0x7e)
			return nq_error_setr(err, -EINVAL, "invalid_field", "token",
				"must be printable characters without blanks");
	return 0;
}

/* GET /v1/host over the pinned link with the token; *ret_info on success. */
static int
ask_agent(const struct host_new *h, const char *fp, json_t **ret_info, struct nq_error *err)
{
	struct agent_client *a = NULL;
	struct agent_reply rep = { 0 };
	int r;

	r = agent_client_new(h->agent_url, h->token, &a);
	if (r >= 0)
		r = agent_client_set_pin(a, fp);
	if (r < 0) {
		agent_client_free(a);
		return nq_error_setr(err, r, "invalid_field", "agent_url", "bad agent_url");
	}
	r = agent_call(a, "GET", "/v1/host", NULL, 0, ENROLL_TIMEOUT_MS, &rep, err);
	agent_client_free(a);
	if (r < 0) {
		agent_reply_release(&rep);
		if (!strcmp(err->code, "agent_unavailable") && !err->field[0])
			snprintf(err->field, sizeof err->field, "agent_url");
		return r;
	}
	if (!json_is_string(json_object_get(rep.json, "agent_id"))) {
		agent_reply_release(&rep);
		return nq_error_setr(err, -EPROTO, "agent_unavailable", "agent_url",
			"the agent at %s does not say who it is (GET /v1/host has no agent_id)",
			h->agent_url);
	}
	*ret_info = rep.json;
	return 0;
}

static int
check_unique(struct manager *m, const char *name, const char *agent_id,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *p[] = { name, agent_id };

	if (db_query(m->db,
		    "SELECT id, name, agent_id FROM hosts WHERE name = $1 OR agent_id = $2",
		    2, p, &rows) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	for (unsigned i = 0; i < rows.nrows; i++) {
		if (!strcmp(db_rows_get(&rows, i, 2) ?: "", agent_id))
			return nq_error_setr(err, -EEXIST, "host_exists", "agent_url",
				"this agent (%.64s) is enrolled already as host %s",
				agent_id, db_rows_get(&rows, i, 1));
		return nq_error_setr(err, -EEXIST, "name_taken", "name",
			"a host named %s exists already", name);
	}
	return 0;
}

static int
insert_host(struct manager *m, const struct host_new *h, const char *id, const char *fp,
	bool tofu, const char *agent_id)
{
	_cleanup_secret_ struct secret *tok = NULL;
	char now[24], sid[96];
	int r;

	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	secrets_id(sid, sizeof sid, "host", id);
	const char *p[] = { id, h->name, h->agent_url, now, agent_id, fp,
		tofu ? "tofu" : "given" };
	r = secret_new(h->token, strlen(h->token), &tok);
	if (r < 0)
		return r;
	r = db_begin(m->db);
	if (r < 0)
		return r;
	r = db_exec(m->db,
		"INSERT INTO hosts (id, name, agent_url, created_at, agent_id, fingerprint,"
		" fingerprint_source, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $4)",
		7, p, NULL);
	if (r >= 0)
		r = secrets_put(m, sid, tok, NULL);
	if (r >= 0)
		r = db_commit(m->db);
	if (r < 0)
		db_rollback(m->db);
	return r;
}

int
hosts_enroll(struct manager *m, const struct host_new *h, char ret_id[64],
	struct nq_error *err)
{
	_cleanup_(json_decrefp) json_t *info = NULL;
	char fp[TLS_FP_SIZE], id[AUTH_UUID_LEN + 1];
	int r;

	if ((r = validate_name("name", h->name, err)) < 0 ||
		(r = check_url(h->agent_url, err)) < 0 ||
		(r = check_token(h->token, err)) < 0)
		return r;
	if (h->fingerprint)
		r = tls_fingerprint_parse(h->fingerprint, fp, err);
	else
		r = agent_tls_probe(h->agent_url, ENROLL_TIMEOUT_MS, fp, err);
	if (r < 0 || (r = ask_agent(h, fp, &info, err)) < 0)
		return r;
	const char *agent_id = json_string_value(json_object_get(info, "agent_id"));
	if ((r = check_unique(m, h->name, agent_id, err)) < 0)
		return r;
	auth_new_uuid(id);
	r = insert_host(m, h, id, fp, !h->fingerprint, agent_id);
	if (r == -EEXIST)
		return check_unique(m, h->name, agent_id, err) < 0
			       ? r
			       : nq_error_setr(err, r, "name_taken", "name",
					 "a host named %s exists already", h->name);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL, "database error");
	(void)hosts_record_info(m, id, info);
	log_info("host enrolled id=%s name=%s fingerprint_source=%s", id, h->name,
		h->fingerprint ? "given" : "tofu");
	events_record(m, "api", "host.enrolled", "host", id, id, "ok",
		h->fingerprint
			? "certificate pinned as given by the operator"
			: "certificate pinned on first use (compare it with the agent's log)");
	snprintf(ret_id, 64, "%s", id);
	return 0;
}
