/* Unit tests: src/manager/routes/ws.c, the console WebSocket's handshake
 * key and frames: RFC 6455's own example key, masked client frames of
 * each length form, partial input, and what a client may not send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <string.h>

#include "manager/routes/ws.h"

static void
test_accept_key_rfc_example(void **state)
{
	char out[29];

	(void)state;
	/* RFC 6455 section 1.3 */
	assert_int_equal(ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
	assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
	assert_int_equal(ws_accept_key("short", out), -EINVAL);
	assert_int_equal(ws_accept_key(NULL, out), -EINVAL);
	assert_int_equal(ws_accept_key("!!!!!!!!!!!!!!!!!!!!!!!!", out), -EINVAL);
}

/* A masked client frame of n payload bytes ('a' + i % 26) into buf. */
static size_t
client_frame(uint8_t *buf, unsigned op, size_t n)
{
	static const uint8_t mask[4] = { 0x11, 0x22, 0x33, 0x44 };
	size_t hl = 2;

	buf[0] = (uint8_t)(0x80 | op);
	if (n < 126) {
		buf[1] = (uint8_t)(0x80 | n);
	} else {
		buf[1] = 0x80 | 126;
		buf[2] = (uint8_t)(n >> 8);
		buf[3] = (uint8_t)n;
		hl = 4;
	}
	memcpy(buf + hl, mask, 4);
	for (size_t i = 0; i < n; i++)
		buf[hl + 4 + i] = (uint8_t)('a' + i % 26) ^ mask[i & 3];
	return hl + 4 + n;
}

static void
test_parse_lengths_and_partial(void **state)
{
	static uint8_t buf[8192];
	struct ws_frame f;
	size_t sizes[] = { 0, 5, 125, 126, 4096 };

	(void)state;
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		size_t n = client_frame(buf, WS_OP_TEXT, sizes[k]);
		/* Every prefix asks for more; the whole frame parses. */
		for (size_t cut = 0; cut < n; cut += (n / 7) + 1)
			assert_int_equal(ws_parse(buf, cut, 4096, &f), 0);
		assert_int_equal(ws_parse(buf, n, 4096, &f), (int)n);
		assert_int_equal(f.opcode, WS_OP_TEXT);
		assert_int_equal(f.len, sizes[k]);
		for (size_t i = 0; i < f.len; i++)
			assert_int_equal(f.payload[i], 'a' + i % 26);
	}
}

static void
test_parse_refuses(void **state)
{
	uint8_t buf[8192];
	struct ws_frame f;
	size_t n;

	(void)state;
	n = client_frame(buf, WS_OP_BINARY, 4097);
	assert_int_equal(ws_parse(buf, n, 4096, &f), -EMSGSIZE);
	n = client_frame(buf, WS_OP_TEXT, 3);
	buf[1] &= 0x7f; /* unmasked */
	assert_int_equal(ws_parse(buf, n, 4096, &f), -EPROTO);
	n = client_frame(buf, WS_OP_TEXT, 3);
	buf[0] &= 0x7f; /* a fragment */
	assert_int_equal(ws_parse(buf, n, 4096, &f), -EPROTO);
	n = client_frame(buf, WS_OP_TEXT, 3);
	buf[0] |= 0x40; /* reserved bit */
	assert_int_equal(ws_parse(buf, n, 4096, &f), -EPROTO);
	uint8_t huge[10] = { 0x82, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0 };
	assert_int_equal(ws_parse(huge, sizeof huge, 4096, &f), -EMSGSIZE);
}

static void
test_server_header(void **state)
{
	uint8_t h[WS_HEADER_MAX];

	(void)state;
	assert_int_equal(ws_header(h, WS_OP_BINARY, 5), 2);
	assert_int_equal(h[0], 0x82);
	assert_int_equal(h[1], 5);
	assert_int_equal(ws_header(h, WS_OP_BINARY, 65535), 4);
	assert_int_equal(h[1], 126);
	assert_int_equal(h[2] << 8 | h[3], 65535);
	assert_int_equal(ws_header(h, WS_OP_TEXT, 65536), 10);
	assert_int_equal(h[0], 0x81);
	assert_int_equal(h[1], 127);
	assert_int_equal(h[7] << 16 | h[8] << 8 | h[9], 65536);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accept_key_rfc_example),
		cmocka_unit_test(test_parse_lengths_and_partial),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_server_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
