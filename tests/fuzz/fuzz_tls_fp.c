/* libFuzzer target for the certificate fingerprint parser (tls_fp.c): no
 * crash, no UB, and what it accepts is canonical (32 upper-case hex pairs
 * joined by ':'), parses again to itself, and came from exactly 64 hex
 * digits of the input.
 *
 * clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *   -Isrc tests/fuzz/fuzz_tls_fp.c src/common/tls_fp.c src/common/nq_error.c \
 *   -o fuzz_tls_fp && ./fuzz_tls_fp -max_total_time=60 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/tls_fp.h"

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c))                                                                 \
			__builtin_trap();                                                 \
	} while (0)

static void
check_canonical(const char *fp)
{
	CHECK(strlen(fp) == TLS_FP_LEN);
	for (size_t i = 0; i < TLS_FP_LEN; i++) {
		if (i % 3 == 2)
			CHECK(fp[i] == ':');
		else
			CHECK(isdigit((unsigned char)fp[i]) ||
				(fp[i] >= 'A' && fp[i] <= 'F'));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[TLS_FP_SIZE], again[TLS_FP_SIZE];
	struct nq_error err = { 0 };
	size_t hex = 0;
	char *in;

	if (size > 512)
		return 0;
	in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	if (tls_fingerprint_parse(in, out, &err) < 0) {
		CHECK(strcmp(err.field, "fingerprint") == 0);
		free(in);
		return 0;
	}
	check_canonical(out);
	for (const char *p = in; *p; p++)
		hex += isxdigit((unsigned char)*p) != 0;
	CHECK(hex == 64);
	CHECK(tls_fingerprint_parse(out, again, &err) == 0);
	CHECK(strcmp(out, again) == 0);
	free(in);
	return 0;
}
