/* Loading and checking the TLS pair of the agent's TCP listener. */
#include "agent/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"

/* Free a buffer that may hold key material, wiping it first. */
static void
wipe_free(char *p, size_t len)
{
	if (!p)
		return;
	explicit_bzero(p, len);
	free(p);
}

/* Read a whole PEM file (name relative to dirfd, or absolute). A private
 * key must not be accessible to others. The buffer is NUL-terminated. */
static int
read_pem(int dirfd, const char *name, bool secret, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;
	size_t len = 0;
	char *buf;

	if (fd < 0)
		return negerrno();
	if (fstat(fd, &st) < 0)
		return negerrno();
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	if (st.st_size > AGENT_TLS_PEM_MAX)
		return -EFBIG;
	if (secret && (st.st_mode & 0007))
		return -EPERM;
	buf = malloc((size_t)st.st_size + 1);
	if (!buf)
		return -ENOMEM;
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int r = n < 0 ? negerrno() : -EIO;
			wipe_free(buf, (size_t)st.st_size + 1);
			return r;
		}
		len += (size_t)n;
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

static const char *
read_error(int r)
{
	switch (r) {
	case -EPERM:
		return "the key file must not be accessible to others (chmod o-rwx)";
	case -EFBIG:
		return "the file is larger than 64 KiB";
	case -EINVAL:
		return "not a regular file";
	default:
		return strerror(-r);
	}
}

/* The certificate parses, the key parses and is the certificate's. */
static int
check_pair(struct agent_tls *t, const char *cert_path, const char *key_path)
{
	gnutls_datum_t cd = { (unsigned char *)t->cert_pem, (unsigned)strlen(t->cert_pem) };
	gnutls_datum_t kd = { (unsigned char *)t->key_pem, (unsigned)t->key_len };
	unsigned char cid[64], kid[64], sha[32];
	size_t cl = sizeof cid, kl = sizeof kid, shal = sizeof sha;
	gnutls_x509_privkey_t key = NULL;
	gnutls_x509_crt_t crt = NULL;
	int r = -EINVAL;

	if (gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_privkey_init(&key) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if (gnutls_x509_crt_import(crt, &cd, GNUTLS_X509_FMT_PEM) < 0) {
		log_error("TLS certificate is not a PEM X.509 certificate path=%s",
			cert_path);
		goto out;
	}
	if (gnutls_x509_privkey_import2(key, &kd, GNUTLS_X509_FMT_PEM, NULL, 0) < 0) {
		log_error("TLS key is not an unencrypted PEM private key path=%s",
			key_path);
		goto out;
	}
	if (gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA256, cid, &cl) < 0 ||
		gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, kid, &kl) < 0 ||
		cl != kl || memcmp(cid, kid, cl) != 0) {
		log_error("TLS key does not belong to the certificate key=%s cert=%s",
			key_path, cert_path);
		goto out;
	}
	if (gnutls_x509_crt_get_fingerprint(crt, GNUTLS_DIG_SHA256, sha, &shal) < 0 ||
		shal != sizeof sha) {
		log_error("cannot compute the TLS certificate's fingerprint path=%s",
			cert_path);
		goto out;
	}
	if (gnutls_x509_crt_get_expiration_time(crt) < time(NULL))
		log_warn("TLS certificate has expired path=%s", cert_path);
	tls_fingerprint_format(sha, t->fingerprint);
	r = 0;
out:
	gnutls_x509_privkey_deinit(key);
	gnutls_x509_crt_deinit(crt);
	return r;
}

/* <state_dir>/tls/, the pair generated there on first start. */
static int
open_generated(struct agent *a, int *ret_dirfd)
{
	char cert_path[PATH_MAX];
	int dirfd, r;

	snprintf(cert_path, sizeof cert_path, "%s/%s/%s", a->cfg.state_dir, AGENT_TLS_DIR,
		AGENT_TLS_CERT);
	dirfd = fs_mkdir_beneath(a->state_dirfd, AGENT_TLS_DIR, 0700);
	if (dirfd < 0) {
		log_error("cannot create the TLS directory path=%s/%s err=%s",
			a->cfg.state_dir, AGENT_TLS_DIR, strerror(-dirfd));
		return dirfd;
	}
	if (fchmod(dirfd, 0700) < 0) {
		r = negerrno();
		close(dirfd);
		return r;
	}
	if (faccessat(dirfd, AGENT_TLS_CERT, F_OK, AT_SYMLINK_NOFOLLOW) < 0) {
		r = errno == ENOENT ? agent_tls_generate(dirfd, a->host_name) : negerrno();
		if (r < 0) {
			log_error("cannot prepare the TLS certificate path=%s err=%s",
				cert_path, strerror(-r));
			close(dirfd);
			return r;
		}
		log_info("generated a self-signed TLS certificate path=%s host_name=%s",
			cert_path, a->host_name);
	}
	*ret_dirfd = dirfd;
	return 0;
}

int
agent_tls_load(struct agent *a, struct agent_tls *ret)
{
	struct agent_tls t = { 0 };
	_cleanup_close_ int dirfd = AT_FDCWD;
	char cert_path[PATH_MAX], key_path[PATH_MAX];
	size_t cert_len;
	int r;

	if (a->cfg.tls_cert) {
		snprintf(cert_path, sizeof cert_path, "%s", a->cfg.tls_cert);
		snprintf(key_path, sizeof key_path, "%s", a->cfg.tls_key);
	} else {
		if ((r = open_generated(a, &dirfd)) < 0)
			return r;
		snprintf(cert_path, sizeof cert_path, "%s/%s/%s", a->cfg.state_dir,
			AGENT_TLS_DIR, AGENT_TLS_CERT);
		snprintf(key_path, sizeof key_path, "%s/%s/%s", a->cfg.state_dir,
			AGENT_TLS_DIR, AGENT_TLS_KEY);
	}
	const char *cert_name = a->cfg.tls_cert ? cert_path : AGENT_TLS_CERT;
	const char *key_name = a->cfg.tls_cert ? key_path : AGENT_TLS_KEY;
	if ((r = read_pem(dirfd, cert_name, false, &t.cert_pem, &cert_len)) < 0) {
		log_error("cannot read the TLS certificate path=%s err=%s", cert_path,
			read_error(r));
		return r;
	}
	if ((r = read_pem(dirfd, key_name, true, &t.key_pem, &t.key_len)) < 0) {
		log_error("cannot read the TLS key path=%s err=%s", key_path,
			read_error(r));
		agent_tls_release(&t);
		return r;
	}
	if ((r = check_pair(&t, cert_path, key_path)) < 0) {
		agent_tls_release(&t);
		return r;
	}
	*ret = t;
	return 0;
}

void
agent_tls_release(struct agent_tls *t)
{
	free(t->cert_pem);
	wipe_free(t->key_pem, t->key_len + 1);
	t->cert_pem = t->key_pem = NULL;
	t->key_len = 0;
}
