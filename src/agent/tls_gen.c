/* The self-signed certificate of an agent that was given none. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "agent/tls.h"

#define TEN_YEARS ((time_t)3653 * 24 * 3600)

static void
wipe_datum(gnutls_datum_t *d)
{
	if (!d->data)
		return;
	explicit_bzero(d->data, d->size);
	gnutls_free(d->data);
	d->data = NULL;
	d->size = 0;
}

/* Subject, validity, serial and the server-only extensions. */
static int
fill_crt(gnutls_x509_crt_t crt, gnutls_x509_privkey_t key, const char *name)
{
	unsigned char serial[16], keyid[64];
	size_t keyid_len = sizeof keyid;
	time_t now = time(NULL);
	int r;

	/* Positive and 16 bytes long: the top bit clear, never all zeros. */
	if ((r = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof serial)) < 0)
		return r;
	serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);
	if ((r = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
		(r = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) < 0 ||
		/* an hour back: a manager whose clock lags still accepts it */
		(r = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
		(r = gnutls_x509_crt_set_expiration_time(crt, now + TEN_YEARS)) < 0 ||
		(r = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0,
			 name, (unsigned)strlen(name))) < 0 ||
		(r = gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, name,
			 (unsigned)strlen(name), GNUTLS_FSAN_SET)) < 0 ||
		(r = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
		(r = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
		(r = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER,
			 0)) < 0 ||
		(r = gnutls_x509_crt_set_key(crt, key)) < 0)
		return r;
	if ((r = gnutls_x509_crt_get_key_id(crt, 0, keyid, &keyid_len)) < 0 ||
		(r = gnutls_x509_crt_set_subject_key_id(crt, keyid, keyid_len)) < 0)
		return r;
	return gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0);
}

/* Generate and export both as PEM; *key_pem is wiped by the caller. */
static int
make_pair(const char *name, gnutls_datum_t *cert_pem, gnutls_datum_t *key_pem)
{
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	int r;

	if ((r = gnutls_x509_privkey_init(&key)) < 0)
		return r;
	if ((r = gnutls_x509_crt_init(&crt)) < 0)
		goto out;
	r = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
		GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0);
	if (r >= 0)
		r = fill_crt(crt, key, name);
	if (r >= 0)
		r = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, key_pem);
	if (r >= 0)
		r = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, cert_pem);
out:
	gnutls_x509_crt_deinit(crt);
	gnutls_x509_privkey_deinit(key); /* gnutls wipes the key material */
	return r;
}

int
agent_tls_generate(int dirfd, const char *host_name)
{
	gnutls_datum_t cert = { 0 }, key = { 0 };
	int r = make_pair(host_name, &cert, &key);

	if (r < 0) {
		log_error("cannot generate the TLS certificate err=%s", gnutls_strerror(r));
		r = -EIO;
		goto out;
	}
	/* The key first: a certificate on disk means the pair is complete. */
	r = fs_write_atomic(dirfd, AGENT_TLS_KEY, key.data, key.size, 0600);
	if (r >= 0)
		r = fs_write_atomic(dirfd, AGENT_TLS_CERT, cert.data, cert.size, 0644);
	if (r < 0)
		log_error("cannot write the generated TLS certificate and key err=%s",
			strerror(-r));
out:
	wipe_datum(&key);
	wipe_datum(&cert);
	return r;
}
