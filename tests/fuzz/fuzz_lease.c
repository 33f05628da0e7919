/* libFuzzer target for the lease file parser (storage/leases_fmt.c): a
 * lease file is written by another host and may be anything. Besides "no
 * crash, no UB", an accepted lease formats to bytes that parse back to the
 * same lease, and the decision rule never answers OURS for a lease of
 * another agent.
 *
 * clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined -Isrc \
 *   tests/fuzz/fuzz_lease.c src/common/validate.c src/common/validate_opts.c \
 *   src/common/nq_error.c -ljansson -o fuzz_lease && ./fuzz_lease -max_total_time=60 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/storage/leases_fmt.c"

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c))                                                                 \
			__builtin_trap();                                                 \
	} while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct lease l, l2;
	struct lease_view v = { .present = true, .mtime_ms = 1000 };
	struct lease_decision d;
	char why[160], buf[LEASE_FILE_MAX];
	int n;

	if (lease_parse((const char *)data, size, &l, why, sizeof why) < 0) {
		CHECK(why[0] != '\0');
		lease_decide(&v, "11111111-1111-4111-8111-111111111111", l.volume_id, 5000,
			15, &d);
		CHECK(d.corrupt && d.v != LEASE_OURS);
		return 0;
	}
	n = lease_format(&l, buf, sizeof buf);
	CHECK(n > 0);
	CHECK(lease_parse(buf, (size_t)n, &l2, why, sizeof why) == 0);
	CHECK(memcmp(&l, &l2, sizeof l) == 0);
	v.valid = true;
	v.l = l;
	lease_decide(&v, "ffffffff-ffff-4fff-8fff-ffffffffffff", l.volume_id, 5000, 15, &d);
	CHECK(d.v != LEASE_OURS ||
		!strcmp(l.agent_id, "ffffffff-ffff-4fff-8fff-ffffffffffff"));
	return 0;
}
