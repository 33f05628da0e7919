/* WebSocket (RFC 6455) pieces for the console bridge: the handshake's
 * accept key and frames. Pure functions on buffers; no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define WS_OP_CONT 0x0
#define WS_OP_TEXT 0x1
#define WS_OP_BINARY 0x2
#define WS_OP_CLOSE 0x8
#define WS_OP_PING 0x9
#define WS_OP_PONG 0xA
#define WS_HEADER_MAX 14

/* Sec-WebSocket-Accept for key (base64 of 16 bytes: 24 characters) into
 * out; -EINVAL for a malformed key. */
int ws_accept_key(const char *key, char out[29]);

struct ws_frame {
	unsigned opcode;
	uint8_t *payload; /* points into the parsed buffer, unmasked in place */
	size_t len;
};

/* The first frame of buf[0..len) (a client's: masked, unfragmented,
 * payload at most max bytes). Returns the bytes it takes (> 0) with *f
 * filled, 0 when more bytes are needed, -EMSGSIZE for a payload over max,
 * -EPROTO for a frame a client may not send. */
int ws_parse(uint8_t *buf, size_t len, size_t max, struct ws_frame *f);

/* A server frame's header (FIN set, unmasked) for len payload bytes into
 * hdr; returns its size. */
size_t ws_header(uint8_t hdr[WS_HEADER_MAX], unsigned opcode, size_t len);
