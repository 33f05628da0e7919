/* URLs for libsmbclient; see smbops.h. */
#include "smbfs/smbops.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Longest FUSE path we turn into a URL (each byte may become 3). */
#define SMBFS_PATH_MAX 4096

int
smbfs_url_encode(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t l = *len;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '~' ||
			     c == '-' || c == '/';

		if (l + (plain ? 1 : 3) + 1 > cap)
			return -ENAMETOOLONG;
		if (plain) {
			out[l++] = (char)c;
		} else {
			out[l++] = '%';
			out[l++] = hex[c >> 4];
			out[l++] = hex[c & 15];
		}
	}
	out[l] = '\0';
	*len = l;
	return 0;
}

int
smbfs_url_encode_raw(char *out, size_t cap, size_t *len, const char *s)
{
	size_t n = strlen(s);

	if (*len + n + 1 > cap)
		return -ENAMETOOLONG;
	memcpy(out + *len, s, n + 1);
	*len += n;
	return 0;
}

char *
smbfs_url(const struct smbfs *fs, const char *path)
{
	size_t plen = strlen(path), cap, len;
	char *url;
	int r;

	if (plen > SMBFS_PATH_MAX) {
		errno = ENAMETOOLONG;
		return NULL;
	}
	cap = fs->base_len + 3 * plen + 2;
	url = malloc(cap);
	if (!url) {
		errno = ENOMEM;
		return NULL;
	}
	memcpy(url, fs->base_url, fs->base_len);
	len = fs->base_len;
	url[len] = '\0';
	if (path[0] != '/')
		url[len++] = '/';
	r = smbfs_url_encode(url, cap, &len, path, plen);
	if (r < 0) {
		free(url);
		errno = -r;
		return NULL;
	}
	return url;
}
