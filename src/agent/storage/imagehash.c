/* Image content hashes and their cache in the state dir; see imagehash.h. */
#include "agent/storage/imagehash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"

#define HASH_DIR "image-hashes"
#define HASH_BUF (1024 * 1024)
/* "<dev> <ino> <size> <mtime_ns> <hex>\n" */
#define HASH_LINE_MAX 160

bool
image_hash_valid(const char *s)
{
	if (!s || strlen(s) != IMAGE_HASH_HEX)
		return false;
	return strspn(s, "0123456789abcdef") == IMAGE_HASH_HEX;
}

static void
key_line(const struct stat *st, const char *hex, char *buf, size_t bufsz)
{
	snprintf(buf, bufsz, "%ju %ju %jd %jd %s\n", (uintmax_t)st->st_dev,
		(uintmax_t)st->st_ino, (intmax_t)st->st_size,
		(intmax_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec, hex);
}

/* The remembered hash when the key still matches; -ENOENT otherwise. */
static int
lookup(int hdfd, const char *name, const struct stat *st, char ret_hex[IMAGE_HASH_HEX + 1])
{
	_cleanup_free_ char *buf = NULL;
	char want[HASH_LINE_MAX];
	size_t len, klen;
	int r;

	r = fs_read_file(hdfd, name, HASH_LINE_MAX, &buf, &len);
	if (r < 0)
		return r == -EFBIG || r == -EINVAL ? -ENOENT : r;
	key_line(st, "", want, sizeof want);
	klen = strlen(want) - 1; /* without the newline */
	if (len != klen + IMAGE_HASH_HEX + 1 || strncmp(buf, want, klen) != 0 ||
		buf[len - 1] != '\n')
		return -ENOENT;
	buf[len - 1] = '\0';
	if (!image_hash_valid(buf + klen))
		return -ENOENT;
	memcpy(ret_hex, buf + klen, IMAGE_HASH_HEX + 1);
	return 0;
}

static int
hash_data(gnutls_hash_hd_t h, int fd, const struct fs_range *r, char *buf)
{
	uint64_t off = r->off, end = r->off + r->len;

	while (off < end) {
		size_t want = end - off < HASH_BUF ? (size_t)(end - off) : HASH_BUF;
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negerrno();
		if (n == 0)
			return -EIO; /* the image shrank while we read it */
		if (gnutls_hash(h, buf, (size_t)n) < 0)
			return -EIO;
		off += (uint64_t)n;
	}
	return 0;
}

static int
compute(int fd, const struct stat *st, char ret_hex[IMAGE_HASH_HEX + 1])
{
	_cleanup_free_ struct fs_range *ext = NULL;
	_cleanup_free_ char *buf = NULL;
	unsigned char dig[32];
	gnutls_hash_hd_t h;
	char line[64];
	size_t n = 0;
	int r;

	r = fs_data_extents(fd, &ext, &n);
	if (r < 0)
		return r;
	buf = malloc(HASH_BUF);
	if (!buf || gnutls_hash_init(&h, GNUTLS_DIG_SHA256) < 0)
		return -ENOMEM;
	snprintf(line, sizeof line, "nqrust-image 1 %jd\n", (intmax_t)st->st_size);
	r = gnutls_hash(h, line, strlen(line)) < 0 ? -EIO : 0;
	for (size_t i = 0; i < n && r >= 0; i++) {
		snprintf(line, sizeof line, "%" PRIu64 " %" PRIu64 "\n", ext[i].off,
			ext[i].len);
		r = gnutls_hash(h, line, strlen(line)) < 0
			    ? -EIO
			    : hash_data(h, fd, &ext[i], buf);
	}
	gnutls_hash_deinit(h, dig);
	if (r < 0)
		return r;
	for (size_t i = 0; i < sizeof dig; i++)
		snprintf(ret_hex + 2 * i, 3, "%02x", dig[i]);
	return 0;
}

int
image_hash(struct agent *a, const char *name, int fd, const struct stat *st,
	char ret_hex[IMAGE_HASH_HEX + 1])
{
	_cleanup_close_ int hdfd = -1;
	char hex[IMAGE_HASH_HEX + 1], line[HASH_LINE_MAX];
	int r;

	hdfd = fs_mkdir_beneath(a->state_dirfd, HASH_DIR, 0700);
	if (hdfd >= 0 && lookup(hdfd, name, st, ret_hex) == 0)
		return 0;
	r = compute(fd, st, hex);
	if (r < 0)
		return r;
	log_info("hashed base image image=%s size=%jd sha256=%s", name,
		(intmax_t)st->st_size, hex);
	if (hdfd >= 0) {
		key_line(st, hex, line, sizeof line);
		r = fs_write_atomic(hdfd, name, line, strlen(line), 0600);
		if (r < 0)
			log_warn("cannot remember the hash of image %s: %s", name,
				strerror(-r));
	}
	memcpy(ret_hex, hex, sizeof hex);
	return 0;
}

void
image_hash_names(struct agent *a, const char *hex, void (*fn)(const char *name, void *arg),
	void *arg)
{
	_cleanup_close_ int hdfd = -1;
	struct dirent *de;
	DIR *d;

	hdfd = openat(a->state_dirfd, HASH_DIR,
		O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (hdfd < 0 || fs_opendir(hdfd, &d) < 0)
		return;
	while ((de = readdir(d))) {
		_cleanup_free_ char *buf = NULL;
		size_t len;
		char *sp;

		if (de->d_name[0] == '.' ||
			fs_read_file(hdfd, de->d_name, HASH_LINE_MAX, &buf, &len) < 0)
			continue;
		sp = strrchr(buf, ' ');
		if (sp && len > 0 && buf[len - 1] == '\n' &&
			strncmp(sp + 1, hex, IMAGE_HASH_HEX) == 0 &&
			sp[1 + IMAGE_HASH_HEX] == '\n')
			fn(de->d_name, arg);
	}
	closedir(d);
}
