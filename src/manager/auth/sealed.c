/* See sealed.h. OpenSSL EVP AES-256-GCM; every buffer that held plain
 * text is wiped before it is freed. */
#include "manager/auth/sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"

#define NONCE_LEN 12
#define TAG_LEN 16
#define SEALED_MAX (64 * 1024)

static int
key_create(const char *path)
{
	unsigned char k[SEALED_KEY_LEN];
	int fd, r = 0;

	if (RAND_bytes(k, sizeof k) != 1)
		return -EIO;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		explicit_bzero(k, sizeof k);
		return -errno;
	}
	if (write(fd, k, sizeof k) != (ssize_t)sizeof k || fsync(fd) < 0)
		r = -EIO;
	explicit_bzero(k, sizeof k);
	close(fd);
	if (r < 0)
		unlink(path);
	return r;
}

int
sealed_key_load(const char *path, struct sealed_key *ret)
{
	unsigned char buf[SEALED_KEY_LEN + 1];
	struct stat st;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		r = key_create(path);
		if (r < 0 && r != -EEXIST)
			return r;
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		close(fd);
		return -EINVAL;
	}
	n = read(fd, buf, sizeof buf);
	close(fd);
	if (n == SEALED_KEY_LEN)
		memcpy(ret->k, buf, SEALED_KEY_LEN);
	explicit_bzero(buf, sizeof buf);
	return n == SEALED_KEY_LEN ? 0 : -EINVAL;
}

static void
ctx_freep(EVP_CIPHER_CTX **c)
{
	EVP_CIPHER_CTX_free(*c);
}

/* Encrypt (enc 1) or decrypt (enc 0) in into out; the tag is written to
 * (enc) or checked against (dec) tag. */
static int
gcm(const struct sealed_key *k, int enc, const unsigned char nonce[NONCE_LEN],
	const char *aad, const unsigned char *in, int len, unsigned char *out,
	unsigned char tag[TAG_LEN])
{
	_cleanup_(ctx_freep) EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0;

	if (!c || EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, enc) != 1 ||
		EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
		EVP_CipherInit_ex(c, NULL, NULL, k->k, nonce, enc) != 1 ||
		EVP_CipherUpdate(c, NULL, &n, (const unsigned char *)aad,
			(int)strlen(aad)) != 1)
		return -EIO;
	if (len > 0 && EVP_CipherUpdate(c, out, &n, in, len) != 1)
		return -EIO;
	if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1)
		return -EIO;
	if (EVP_CipherFinal_ex(c, out + n, &fin) != 1)
		return enc ? -EIO : -EBADMSG;
	if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
		return -EIO;
	return 0;
}

int
sealed_seal(const struct sealed_key *k, const char *aad, const void *pt, size_t len,
	char **ret_b64)
{
	size_t raw_len = NONCE_LEN + len + TAG_LEN;
	unsigned char *raw;
	char *out;
	int r;

	if (len > SEALED_MAX)
		return -E2BIG;
	raw = malloc(raw_len);
	out = malloc(4 * ((raw_len + 2) / 3) + 1);
	if (!raw || !out) {
		free(raw);
		free(out);
		return -ENOMEM;
	}
	r = RAND_bytes(raw, NONCE_LEN) == 1 ? 0 : -EIO;
	if (r >= 0)
		r = gcm(k, 1, raw, aad, pt, (int)len, raw + NONCE_LEN,
			raw + NONCE_LEN + len);
	if (r >= 0)
		EVP_EncodeBlock((unsigned char *)out, raw, (int)raw_len);
	free(raw);
	if (r < 0) {
		free(out);
		return r;
	}
	*ret_b64 = out;
	return 0;
}

static int
decode(const char *b64, unsigned char **ret, size_t *ret_len)
{
	size_t l = strlen(b64), pad = 0;
	unsigned char *raw;
	int n;

	if (l == 0 || l % 4 || l > 4 * (SEALED_MAX / 3 + 16))
		return -EBADMSG;
	pad = (b64[l - 1] == '=') + (l > 1 && b64[l - 2] == '=');
	raw = malloc(l / 4 * 3 + 1);
	if (!raw)
		return -ENOMEM;
	n = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)l);
	if (n < 0 || (size_t)n < pad + NONCE_LEN + TAG_LEN) {
		free(raw);
		return -EBADMSG;
	}
	*ret = raw;
	*ret_len = (size_t)n - pad;
	return 0;
}

int
sealed_open(const struct sealed_key *k, const char *aad, const char *b64,
	struct secret **ret)
{
	_cleanup_free_ unsigned char *raw = NULL;
	struct secret *s = NULL;
	size_t raw_len, len;
	int r;

	r = decode(b64, &raw, &raw_len);
	if (r < 0)
		return r;
	len = raw_len - NONCE_LEN - TAG_LEN;
	/* A secret of len bytes to decrypt into: wiped on every path. */
	r = secret_new(NULL, 0, &s);
	if (r < 0)
		return r;
	free(s->buf);
	s->buf = calloc(1, len + 1);
	s->len = len;
	if (!s->buf) {
		s->len = 0;
		secret_free(s);
		return -ENOMEM;
	}
	r = gcm(k, 0, raw, aad, raw + NONCE_LEN, (int)len, (unsigned char *)s->buf,
		raw + NONCE_LEN + len);
	if (r < 0) {
		secret_free(s);
		return r;
	}
	*ret = s;
	return 0;
}
