/* libcurl client for the agent API: see agent_client.h. */
#include "manager/agent_client.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/nq_buf.h"
#include "common/log.h"
#include "common/macro.h"
#include "manager/agent_tls.h"

struct agent_client {
	int refs;              /* atomic */
	char pin[TLS_FP_SIZE]; /* https: the pinned fingerprint ("" refuses) */
	char *unix_path;       /* NULL for TCP */
	char *base;            /* "http://agent" or the http URL without trailing '/' */
	char *auth_header;     /* "Authorization: Bearer …" or NULL */
};

int
agent_client_new(const char *spec, const char *token, struct agent_client **ret)
{
	struct agent_client *a = calloc(1, sizeof *a);

	if (!a)
		return -ENOMEM;
	a->refs = 1;
	if (strncmp(spec, "unix:", 5) == 0 && spec[5] == '/') {
		a->unix_path = strdup(spec + 5);
		a->base = strdup("http://agent");
	} else if (strncmp(spec, "http://", 7) == 0 || strncmp(spec, "https://", 8) == 0) {
		a->base = strdup(spec);
		if (a->base) {
			size_t n = strlen(a->base);
			while (n > 0 && a->base[n - 1] == '/')
				a->base[--n] = '\0';
		}
	} else {
		free(a);
		return -EINVAL;
	}
	if (token && *token) {
		size_t n = strlen(token) + 32;
		a->auth_header = malloc(n);
		if (a->auth_header)
			snprintf(a->auth_header, n, "Authorization: Bearer %s", token);
	}
	if (!a->base || (spec[0] == 'u' && !a->unix_path) ||
		(token && *token && !a->auth_header)) {
		agent_client_free(a);
		return -ENOMEM;
	}
	*ret = a;
	return 0;
}

int
agent_client_set_pin(struct agent_client *a, const char *fingerprint)
{
	struct nq_error err = { 0 };

	return tls_fingerprint_parse(fingerprint, a->pin, &err);
}

struct agent_client *
agent_client_ref(struct agent_client *a)
{
	if (a)
		__atomic_add_fetch(&a->refs, 1, __ATOMIC_ACQ_REL);
	return a;
}

void
agent_client_free(struct agent_client *a)
{
	if (!a || __atomic_sub_fetch(&a->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	free(a->unix_path);
	free(a->base);
	if (a->auth_header) {
		explicit_bzero(a->auth_header, strlen(a->auth_header));
		free(a->auth_header);
	}
	free(a);
}

void
agent_reply_release(struct agent_reply *r)
{
	if (!r)
		return;
	json_decref(r->json);
	r->json = NULL;
}

/* The agent's snake_case error code in body, or NULL. */
static const char *
agent_error_code(json_t *body)
{
	json_t *e = body ? json_object_get(body, "error") : NULL;
	const char *code = json_string_value(json_object_get(e, "code"));

	if (!code || !*code || strlen(code) >= sizeof((struct nq_error *)0)->code ||
		strspn(code, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(code))
		return NULL;
	return code;
}

/* Copy the agent's error object into err; a generic one otherwise. */
static void
error_from_reply(const struct agent_reply *rep, struct nq_error *err)
{
	json_t *e = rep->json ? json_object_get(rep->json, "error") : NULL;
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message"));
	const char *field = json_string_value(json_object_get(e, "field"));

	if (!code)
		nq_error_set(err, "agent_unavailable", NULL,
			"the agent answered with HTTP status %d", rep->status);
	else
		nq_error_set(err, code, field, "%s", msg ? msg : code);
}

/* The number after header name (with its colon) in buf, or false. */
static bool
header_num(const char *buf, size_t len, const char *name, long long *ret)
{
	size_t k = strlen(name);
	char line[64];

	if (len <= k || len - k >= sizeof line || strncasecmp(buf, name, k))
		return false;
	memcpy(line, buf + k, len - k);
	line[len - k] = '\0';
	*ret = strtoll(line, NULL, 10);
	return true;
}

/* X-Generation (and the console's offsets) of a reply into x. */
static size_t
header_cb(char *buf, size_t size, size_t n, void *ud)
{
	struct agent_call_ext *x = ud;
	size_t len = size * n;

	if (!header_num(buf, len, "X-Generation:", &x->generation) &&
		!header_num(buf, len, "X-Offset:", &x->offset))
		(void)header_num(buf, len, "X-Next-Offset:", &x->next_offset);
	return len;
}

/* Abort the transfer once *x->abort turns true. */
static int
progress_cb(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const struct agent_call_ext *x = ud;

	(void)dt, (void)dn, (void)ut, (void)un;
	return x->abort && __atomic_load_n(x->abort, __ATOMIC_RELAXED) ? 1 : 0;
}

/* Headers, body and the extras of one request; the header list to free
 * after the transfer. */
static struct curl_slist *
set_request(CURL *c, const struct agent_client *a, const char *method, const char *body,
	size_t body_len, struct agent_call_ext *x)
{
	struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");

	if (a->auth_header)
		hdrs = curl_slist_append(hdrs, a->auth_header);
	if (body) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "DELETE") != 0) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, 0L);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	if (x) {
		x->generation = x->offset = x->next_offset = -1;
		x->raw_body = NULL;
		x->raw_len = 0;
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, header_cb);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress_cb);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	}
	return hdrs;
}

/* What a finished transfer means for the caller (see agent_call). */
static int
map_result(const struct agent_client *a, const struct agent_pin *pin, CURLcode rc,
	long status, const struct nq_buf *b, bool raw, const char *method,
	const char *path, long timeout_ms, struct agent_reply *ret, struct nq_error *err)
{
	if (rc != CURLE_OK && pin->mismatch)
		return nq_error_setr(err, -EPERM, "agent_fingerprint_mismatch", NULL,
			"the agent at %s presents certificate %s but %s is pinned",
			a->base, pin->seen, pin->want);
	if (rc != CURLE_OK) {
		log_debug("agent request failed method=%s path=%s curl=\"%s\"", method,
			path, curl_easy_strerror(rc));
		if (rc == CURLE_OPERATION_TIMEDOUT)
			return nq_error_setr(err, -EHOSTUNREACH, "agent_unavailable", NULL,
				"the agent did not answer within %ld ms", timeout_ms);
		return nq_error_setr(err, -EHOSTUNREACH, "agent_unavailable", NULL,
			"the agent is not reachable: %s", curl_easy_strerror(rc));
	}
	ret->status = (int)status;
	if (b->p && b->len && !(raw && status >= 200 && status < 300))
		ret->json = json_loadb(b->p, b->len, 0, NULL);
	if (status >= 200 && status < 300)
		return 0;
	if (status == 401)
		return nq_error_setr(err, -EACCES, "agent_auth_failed", NULL,
			"the agent at %s refused the token (HTTP 401)", a->base);
	/* The agent answered: its own error (no_space 507, io_error 500, every
	 * smb_* code) keeps its meaning. agent_unavailable is for an agent
	 * that cannot be reached or answers without a well-formed error. */
	if (!agent_error_code(ret->json)) {
		nq_error_set(err, "agent_unavailable", NULL,
			"the agent failed with HTTP status %ld", status);
		return -EHOSTUNREACH;
	}
	error_from_reply(ret, err);
	return -EREMOTEIO;
}

int
agent_call(struct agent_client *a, const char *method, const char *path, const char *body,
	size_t body_len, long timeout_ms, struct agent_reply *ret, struct nq_error *err)
{
	return agent_call_ext(a, method, path, body, body_len, timeout_ms, NULL, ret, err);
}

int
agent_call_ext(struct agent_client *a, const char *method, const char *path,
	const char *body, size_t body_len, long timeout_ms, struct agent_call_ext *x,
	struct agent_reply *ret, struct nq_error *err)
{
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(AGENT_REPLY_MAX, false);
	struct curl_slist *hdrs = NULL;
	struct agent_pin pin = { 0 };
	bool tls = strncmp(a->base, "https://", 8) == 0;
	char url[1024];
	long status = 0;
	CURLcode rc;
	CURL *c;

	ret->status = 0;
	ret->json = NULL;
	if (tls && !a->pin[0])
		return nq_error_setr(err, -EPERM, "agent_fingerprint_mismatch", NULL,
			"no certificate is pinned for the agent at %s", a->base);
	if ((size_t)snprintf(url, sizeof url, "%s%s", a->base, path) >= sizeof url)
		return nq_error_setr(err, -ENAMETOOLONG, "internal_error", NULL,
			"agent URL too long");
	c = curl_easy_init();
	if (!c)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (a->unix_path)
		curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, a->unix_path);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
		timeout_ms < 2000 ? timeout_ms : 2000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, nq_buf_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, tls ? "https" : "http");
	memcpy(pin.want, a->pin, sizeof pin.want);
	if (tls && agent_tls_setup(c, &pin) < 0) {
		curl_easy_cleanup(c);
		return nq_error_setr(err, -EOPNOTSUPP, "internal_error", NULL,
			"this libcurl cannot pin a certificate (needs OpenSSL)");
	}
	hdrs = set_request(c, a, method, body, body_len, x);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	/* The list holds a copy of the Authorization header: wiped first. */
	for (struct curl_slist *h = hdrs; h; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(hdrs);

	int r = map_result(a, &pin, rc, status, &b, x && x->raw, method, path, timeout_ms,
		ret, err);
	if (r >= 0 && x && x->raw) {
		x->raw_body = b.len ? TAKE_PTR(b.p) : NULL;
		x->raw_len = x->raw_body ? b.len : 0;
	}
	return r;
}
