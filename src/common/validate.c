/* Allow-list validators for everything that crosses a trust boundary.
 *
 * Every function here is pure: it looks only at its arguments, writes its
 * output only on success and describes a failure in *err. Messages name the
 * caller's field and say what is wrong; they never echo untrusted bytes that
 * could carry control characters or a secret. */
#include "common/validate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/validate_internal.h"

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), or 0.
 * Overlong forms, surrogates, code points above U+10FFFF and the C1
 * control range are refused. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	uint32_t cp;
	size_t len;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		len = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		len = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
		(cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff ||
		(cp >= 0x80 && cp <= 0x9f))
		return 0;
	return len;
}

/* Printable text: no ASCII control characters, valid UTF-8 otherwise, and
 * none of the bytes in `forbidden`. Returns the first offending byte's
 * offset, or len when the text is clean. */
static size_t
check_text(const char *s, size_t len, const char *forbidden)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];
		size_t n;

		if (c < 0x80) {
			if (is_ctl(c) || (c != '\0' && strchr(forbidden, c)))
				return i;
			i++;
			continue;
		}
		n = utf8_seq((const unsigned char *)s + i, len - i);
		if (n == 0)
			return i;
		i += n;
	}
	return len;
}

static int
copy_out(const char *field, const char *canon, char *ret, size_t retsz,
	struct nq_error *err)
{
	size_t len = strlen(canon);

	if (!ret)
		return 0;
	if (len + 1 > retsz)
		return nq_error_set(err, INVALID, field, "%s is too long", field);
	memcpy(ret, canon, len + 1);
	return 0;
}

/* ---- servers ---- */

static int
server_error(const char *field, struct nq_error *err)
{
	return nq_error_set(err, INVALID, field,
		"%s must be a hostname, an IPv4 address or an IPv6 address in []", field);
}

static bool
valid_hostname(const char *s, size_t len)
{
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? s[i] : '.';

		if (c == '.') {
			/* RFC 1123 labels: 1..63, no '-' at either end. */
			if (label == 0 || label > 63 || s[i - 1] == '-' ||
				s[i - label] == '-')
				return false;
			label = 0;
		} else if (is_alnum(c) || c == '-') {
			label++;
		} else {
			return false;
		}
	}
	return true;
}

int
validate_server(const char *field, const char *in, char *ret, size_t retsz,
	struct nq_error *err)
{
	char canon[NQ_SERVER_MAX + 1];
	struct in_addr a4;
	const char *last;
	size_t len;

	if (!in || in[0] == '\0')
		return nq_error_set(err, INVALID, field, "%s is required", field);
	len = strnlen(in, NQ_SERVER_MAX + 1);
	if (len > NQ_SERVER_MAX)
		return nq_error_set(err, INVALID, field, "%s is longer than %d characters",
			field, NQ_SERVER_MAX);

	if (in[0] == '[') {
		char addr[INET6_ADDRSTRLEN + 1];
		struct in6_addr a6;
		size_t n = len - 2;

		if (len < 4 || in[len - 1] != ']' || n >= sizeof addr)
			return server_error(field, err);
		for (size_t i = 1; i < len - 1; i++)
			if (!is_digit(in[i]) && !strchr("abcdefABCDEF:.", in[i]))
				return nq_error_set(err, INVALID, field,
					"%s must be an IPv6 address in [] without a zone or port",
					field);
		memcpy(addr, in + 1, n);
		addr[n] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1 ||
			!inet_ntop(AF_INET6, &a6, addr, sizeof addr))
			return nq_error_set(err, INVALID, field,
				"%s is not a valid IPv6 address", field);
		snprintf(canon, sizeof canon, "[%s]", addr);
		return copy_out(field, canon, ret, retsz, err);
	}

	if (strspn(in, "0123456789.") == len) {
		/* Strict dotted quad only: inet_pton refuses the short, octal
		 * and leading-zero forms a resolver would reinterpret. */
		if (inet_pton(AF_INET, in, &a4) != 1 ||
			!inet_ntop(AF_INET, &a4, canon, sizeof canon))
			return nq_error_set(err, INVALID, field,
				"%s is not a valid IPv4 address (use four decimal numbers 0-255 without leading zeros)",
				field);
		return copy_out(field, canon, ret, retsz, err);
	}

	if (!valid_hostname(in, len))
		return server_error(field, err);
	/* "0x7f.1" is a valid hostname by the letter but inet_aton (and so
	 * the resolver) reads it as an address. */
	if (inet_aton(in, &a4) != 0)
		return nq_error_set(err, INVALID, field,
			"%s looks like a non-standard IPv4 address; use four decimal numbers",
			field);
	/* An all-numeric top label is never a real name (RFC 1123 2.1). */
	last = strrchr(in, '.');
	last = last ? last + 1 : in;
	if (strspn(last, "0123456789") == strlen(last))
		return server_error(field, err);
	for (size_t i = 0; i <= len; i++)
		canon[i] = to_lower(in[i]);
	return copy_out(field, canon, ret, retsz, err);
}

bool
server_is_ipv6(const char *canon)
{
	return canon && canon[0] == '[';
}

/* ---- shares, subdirs, versions ---- */

int
validate_share(const char *field, const char *in, struct nq_error *err)
{
	size_t len;

	if (!in || in[0] == '\0')
		return nq_error_set(err, INVALID, field, "%s is required", field);
	len = strnlen(in, NQ_SHARE_MAX + 1);
	if (len > NQ_SHARE_MAX)
		return nq_error_set(err, INVALID, field, "%s is longer than %d characters",
			field, NQ_SHARE_MAX);
	if (strcmp(in, ".") == 0 || strcmp(in, "..") == 0)
		return nq_error_set(err, INVALID, field, "%s cannot be \".\" or \"..\"",
			field);
	if (in[0] == ' ' || in[len - 1] == ' ')
		return nq_error_set(err, INVALID, field,
			"%s cannot start or end with a space", field);
	if (check_text(in, len, "\\/:*?\"<>|,=;[]+") != len)
		return nq_error_set(err, INVALID, field,
			"%s must be a share name only (the part after //server/), without control characters or any of \\ / : * ? \" < > | , = ; [ ] +",
			field);
	return 0;
}

int
validate_subdir(const char *field, const char *in, char *ret, size_t retsz,
	struct nq_error *err)
{
	char canon[NQ_SUBDIR_MAX + 1];
	size_t len, start = 0;

	if (!in || in[0] == '\0')
		return copy_out(field, "", ret, retsz, err);
	len = strnlen(in, NQ_SUBDIR_MAX + 1);
	if (len > NQ_SUBDIR_MAX)
		return nq_error_set(err, INVALID, field, "%s is longer than %d characters",
			field, NQ_SUBDIR_MAX);
	if (in[0] == '/')
		return nq_error_set(err, INVALID, field,
			"%s must be a relative path inside the share, not an absolute path",
			field);
	if (check_text(in, len, "\\:*?\"<>|") != len)
		return nq_error_set(err, INVALID, field,
			"%s must use '/' between folders and contain no control characters, backslashes or any of : * ? \" < > |",
			field);
	/* One trailing slash is tolerated and dropped. */
	if (in[len - 1] == '/')
		len--;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && in[i] != '/')
			continue;
		size_t clen = i - start;
		const char *comp = in + start;

		if (clen == 0)
			return nq_error_set(err, INVALID, field,
				"%s cannot contain empty path components (\"//\")", field);
		if ((clen == 1 && comp[0] == '.') ||
			(clen == 2 && comp[0] == '.' && comp[1] == '.'))
			return nq_error_set(err, INVALID, field,
				"%s cannot contain \".\" or \"..\" components", field);
		if (clen > 255)
			return nq_error_set(err, INVALID, field,
				"%s has a folder name longer than 255 bytes", field);
		if (comp[0] == ' ' || comp[clen - 1] == ' ')
			return nq_error_set(err, INVALID, field,
				"%s has a folder name that starts or ends with a space",
				field);
		start = i + 1;
	}
	memcpy(canon, in, len);
	canon[len] = '\0';
	return copy_out(field, canon, ret, retsz, err);
}

int
validate_smb_version(const char *field, const char *in, struct nq_error *err)
{
	static const char *const ok[] = { "default", "2.0", "2.1", "3", "3.0", "3.11" };

	if (!in || in[0] == '\0')
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (strcmp(in, ok[i]) == 0)
			return 0;
	if (strcmp(in, "1") == 0 || strcmp(in, "1.0") == 0)
		return nq_error_set(err, INVALID, field,
			"%s 1.0 (SMB1) is refused as insecure; use 2.0, 2.1, 3, 3.0, 3.11 or default",
			field);
	return nq_error_set(err, INVALID, field,
		"%s must be one of default, 2.0, 2.1, 3, 3.0, 3.11", field);
}

/* ---- identifiers and names ---- */

int
validate_uuid(const char *field, const char *in, char ret[NQ_UUID_LEN + 1],
	struct nq_error *err)
{
	char canon[NQ_UUID_LEN + 1];

	if (!in || strnlen(in, NQ_UUID_LEN + 1) != NQ_UUID_LEN)
		goto bad;
	for (size_t i = 0; i < NQ_UUID_LEN; i++) {
		char c = to_lower(in[i]);

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				goto bad;
		} else if (!is_digit(c) && !(c >= 'a' && c <= 'f')) {
			goto bad;
		}
		canon[i] = c;
	}
	canon[NQ_UUID_LEN] = '\0';
	memcpy(ret, canon, sizeof canon);
	return 0;
bad:
	return nq_error_set(err, INVALID, field,
		"%s must be a UUID (8-4-4-4-12 hexadecimal digits)", field);
}

int
validate_backend_id(const char *field, const char *in, char ret[NQ_UUID_LEN + 1],
	struct nq_error *err)
{
	size_t len = in ? strnlen(in, NQ_UUID_LEN + 1) : 0;

	if (validate_uuid(field, in, ret, NULL) == 0)
		return 0;
	if (len == 0 || len > NQ_UUID_LEN ||
		!(is_digit(in[0]) || (in[0] >= 'a' && in[0] <= 'z')))
		goto bad;
	for (size_t i = 0; i < len; i++)
		if (!is_digit(in[i]) && !(in[i] >= 'a' && in[i] <= 'z') && in[i] != '-')
			goto bad;
	memcpy(ret, in, len + 1);
	return 0;
bad:
	return nq_error_set(err, INVALID, field,
		"%s must be a UUID or 1..%d of a-z, 0-9 and '-' starting with a letter or digit",
		field, NQ_UUID_LEN);
}

static int
validate_cred_text(const char *field, const char *what, const char *in, size_t max,
	struct nq_error *err)
{
	size_t len;

	if (!in)
		return 0;
	len = strnlen(in, max + 1);
	if (len > max)
		return nq_error_set(err, INVALID, field,
			"%s is longer than %zu characters", field, max);
	if (check_text(in, len, "") != len)
		return nq_error_set(err, INVALID, field,
			"%s contains control characters or invalid UTF-8", field);
	if (strpbrk(in, ",="))
		return nq_error_set(err, INVALID, field,
			"%s cannot contain ',' or '=' because mount helpers cannot carry such a %s",
			field, what);
	if (in[0] == ' ')
		return nq_error_set(err, INVALID, field, "%s cannot start with a space",
			field);
	return 0;
}

int
validate_username(const char *field, const char *in, struct nq_error *err)
{
	return validate_cred_text(field, "user name", in, NQ_USER_MAX, err);
}

int
validate_domain(const char *field, const char *in, struct nq_error *err)
{
	return validate_cred_text(field, "domain", in, NQ_DOMAIN_MAX, err);
}

int
validate_password(const char *field, const char *in, size_t len, struct nq_error *err)
{
	if (!in && len > 0)
		return nq_error_set(err, INVALID, field, "%s is missing", field);
	if (len > NQ_SECRET_MAX)
		return nq_error_set(err, INVALID, field, "%s is longer than %d bytes",
			field, NQ_SECRET_MAX);
	/* The credentials file is line-based; never say which byte it was. */
	for (size_t i = 0; i < len; i++)
		if (in[i] == '\0' || in[i] == '\n' || in[i] == '\r')
			return nq_error_set(err, INVALID, field,
				"%s cannot contain line breaks or NUL bytes", field);
	return 0;
}

int
validate_name(const char *field, const char *in, struct nq_error *err)
{
	size_t len;

	if (!in || in[0] == '\0')
		return nq_error_set(err, INVALID, field, "%s is required", field);
	len = strnlen(in, 65);
	if (len > 64 || !is_alnum(in[0]) ||
		strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			   "0123456789 ._-") != len)
		return nq_error_set(err, INVALID, field,
			"%s must be 1 to 64 letters, digits, spaces, '.', '_' or '-', starting with a letter or digit",
			field);
	return 0;
}

int
validate_image_name(const char *field, const char *in, struct nq_error *err)
{
	size_t len;

	if (!in || in[0] == '\0')
		return nq_error_set(err, INVALID, field, "%s is required", field);
	len = strnlen(in, 129);
	if (len > 128 || in[0] == '.' ||
		strspn(in, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			   "0123456789._-") != len)
		return nq_error_set(err, INVALID, field,
			"%s must be a file name of 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'",
			field);
	return 0;
}

/* ---- paths ---- */

static bool
path_normalised(const char *p)
{
	size_t len;

	if (!p || p[0] != '/')
		return false;
	len = strnlen(p, PATH_MAX);
	if (len >= PATH_MAX)
		return false;
	if (len == 1)
		return true;
	if (p[len - 1] == '/')
		return false;
	for (size_t i = 0; i < len; i++)
		if (is_ctl((unsigned char)p[i]))
			return false;
	for (const char *c = p + 1;;) {
		const char *e = strchrnul(c, '/');
		size_t clen = (size_t)(e - c);

		if (clen == 0 || (clen == 1 && c[0] == '.') ||
			(clen == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (*e == '\0')
			return true;
		c = e + 1;
	}
}

int
validate_path_under(const char *field, const char *path, const char *root,
	struct nq_error *err)
{
	size_t rlen;

	if (!path || path[0] == '\0')
		return nq_error_set(err, INVALID, field, "%s is required", field);
	if (!path_normalised(path))
		return nq_error_set(err, INVALID, field,
			"%s must be an absolute, normalised path (no \".\", \"..\", \"//\", trailing '/' or control characters)",
			field);
	if (!path_normalised(root))
		return nq_error_set(err, INVALID, field,
			"%s cannot be checked because the allowed root is not an absolute, normalised path",
			field);
	rlen = strlen(root);
	if (rlen == 1)
		return 0;
	if (strncmp(path, root, rlen) == 0 && (path[rlen] == '\0' || path[rlen] == '/'))
		return 0;
	return nq_error_set(err, INVALID, field,
		"%s must lie under the allowed directory %s", field, root);
}
