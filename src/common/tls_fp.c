/* SHA-256 certificate fingerprints: canonical form and user input. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "common/tls_fp.h"

static const char hexdigits[] = "0123456789ABCDEF";

void
tls_fingerprint_format(const uint8_t sha[32], char out[TLS_FP_SIZE])
{
	size_t o = 0;

	for (size_t i = 0; i < 32; i++) {
		if (i > 0)
			out[o++] = ':';
		out[o++] = hexdigits[sha[i] >> 4];
		out[o++] = hexdigits[sha[i] & 0xf];
	}
	out[o] = '\0';
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int
fp_invalid(struct nq_error *err)
{
	return nq_error_set(err, "invalid_field", "fingerprint",
		"fingerprint must be a SHA-256 digest: 64 hex digits, optionally as 32 pairs separated by ':'");
}

int
tls_fingerprint_parse(const char *in, char out[TLS_FP_SIZE], struct nq_error *err)
{
	uint8_t sha[32];
	size_t len, i = 0;
	bool colons;

	if (!in)
		return fp_invalid(err);
	while (is_blank(*in))
		in++;
	len = strlen(in);
	while (len > 0 && is_blank(in[len - 1]))
		len--;
	if (len == 64)
		colons = false;
	else if (len == TLS_FP_LEN)
		colons = true;
	else
		return fp_invalid(err);
	for (size_t b = 0; b < 32; b++) {
		int hi, lo;

		if (colons && b > 0 && in[i++] != ':')
			return fp_invalid(err);
		hi = hexval(in[i++]);
		lo = hexval(in[i++]);
		if (hi < 0 || lo < 0)
			return fp_invalid(err);
		sha[b] = (uint8_t)(hi << 4 | lo);
	}
	tls_fingerprint_format(sha, out);
	return 0;
}
