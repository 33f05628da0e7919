/* WebSocket frames and handshake: see ws.h. */
#include "manager/routes/ws.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

int
ws_accept_key(const char *key, char out[29])
{
	unsigned char digest[SHA_DIGEST_LENGTH], raw[32];
	char buf[64];

	if (!key || strlen(key) != 24 ||
		EVP_DecodeBlock(raw, (const unsigned char *)key, 24) != 18)
		return -EINVAL;
	snprintf(buf, sizeof buf, "%s" WS_GUID, key);
	SHA1((const unsigned char *)buf, strlen(buf), digest);
	EVP_EncodeBlock((unsigned char *)out, digest, SHA_DIGEST_LENGTH);
	return 0;
}

int
ws_parse(uint8_t *buf, size_t len, size_t max, struct ws_frame *f)
{
	size_t hl = 2, n;
	uint8_t *mask;

	if (len < 2)
		return 0;
	if ((buf[0] & 0x70) || !(buf[1] & 0x80))
		return -EPROTO; /* reserved bits, or an unmasked client frame */
	if (!(buf[0] & 0x80) || (buf[0] & 0x0f) == WS_OP_CONT)
		return -EPROTO; /* fragments: no input needs them */
	n = buf[1] & 0x7f;
	if (n == 126) {
		if (len < 4)
			return 0;
		n = (size_t)buf[2] << 8 | buf[3];
		hl = 4;
	} else if (n == 127) {
		if (len < 10)
			return 0;
		if (buf[2] || buf[3] || buf[4] || buf[5] || buf[6])
			return -EMSGSIZE;
		n = (size_t)buf[7] << 16 | (size_t)buf[8] << 8 | buf[9];
		hl = 10;
	}
	if (n > max)
		return -EMSGSIZE;
	if (len < hl + 4 + n)
		return 0;
	mask = buf + hl;
	f->opcode = buf[0] & 0x0f;
	f->payload = buf + hl + 4;
	f->len = n;
	for (size_t i = 0; i < n; i++)
		f->payload[i] ^= mask[i & 3];
	return (int)(hl + 4 + n);
}

size_t
ws_header(uint8_t hdr[WS_HEADER_MAX], unsigned opcode, size_t len)
{
	hdr[0] = (uint8_t)(0x80 | (opcode & 0x0f));
	if (len < 126) {
		hdr[1] = (uint8_t)len;
		return 2;
	}
	if (len < 65536) {
		hdr[1] = 126;
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		return 4;
	}
	hdr[1] = 127;
	for (int i = 0; i < 8; i++)
		hdr[2 + i] = (uint8_t)((uint64_t)len >> (8 * (7 - i)));
	return 10;
}
