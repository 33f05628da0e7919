/* See agent_tls.h. libcurl here is built on OpenSSL: CURLOPT_SSL_CTX_FUNCTION
 * hands us the SSL_CTX before the handshake. */
#include "manager/agent_tls.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>

bool
agent_pin_check(struct agent_pin *p, const uint8_t sha[32])
{
	tls_fingerprint_format(sha, p->seen);
	if (p->probe)
		return true;
	p->mismatch = strcmp(p->seen, p->want) != 0;
	return !p->mismatch;
}

/* Replaces OpenSSL's chain verification: the depth-0 certificate's digest
 * must be the pin. */
static int
verify_cb(X509_STORE_CTX *x, void *arg)
{
	struct agent_pin *p = arg;
	X509 *cert = X509_STORE_CTX_get0_cert(x);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;

	if (!cert || X509_digest(cert, EVP_sha256(), md, &len) != 1 || len != 32) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_UNSPECIFIED);
		return 0;
	}
	if (!agent_pin_check(p, md)) {
		X509_STORE_CTX_set_error(x, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	X509_STORE_CTX_set_error(x, X509_V_OK);
	return 1;
}

static CURLcode
ctx_cb(CURL *c, void *sslctx, void *arg)
{
	SSL_CTX *ctx = sslctx;

	(void)c;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_cert_verify_callback(ctx, verify_cb, arg);
	return CURLE_OK;
}

int
agent_tls_setup(CURL *c, struct agent_pin *p)
{
	p->seen[0] = '\0';
	p->mismatch = false;
	/* curl's own checks off: the callback above is the verification. */
	if (curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_SSL_SESSIONID_CACHE, 0L) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2) !=
			CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, p) != CURLE_OK ||
		curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, ctx_cb) != CURLE_OK)
		return -EOPNOTSUPP;
	return 0;
}

int
agent_tls_probe(const char *url, long timeout_ms, char ret_fp[TLS_FP_SIZE],
	struct nq_error *err)
{
	struct agent_pin p = { .probe = true };
	CURLcode rc;
	CURL *c;
	int r;

	if (strncmp(url, "https://", 8) != 0)
		return nq_error_setr(err, -EINVAL, "invalid_field", "agent_url",
			"must be https://: the link carries a token");
	c = curl_easy_init();
	if (!c)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CONNECT_ONLY, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	r = agent_tls_setup(c, &p);
	rc = r < 0 ? CURLE_FAILED_INIT : curl_easy_perform(c);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK || !p.seen[0])
		return nq_error_setr(err, -EHOSTUNREACH, "agent_unavailable", "agent_url",
			"no TLS handshake with the agent at %s: %s", url,
			curl_easy_strerror(rc));
	memcpy(ret_fp, p.seen, TLS_FP_SIZE);
	return 0;
}
