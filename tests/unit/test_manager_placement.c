/* Unit tests: the placement decision (src/manager/services/placement.c)
 * over host rows, and the certificate pin check of the agent link
 * (agent_pin_check in src/manager/agent_tls.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <cmocka.h>
#include <string.h>

#include "common/tls_fp.h"
#include "manager/agent_tls.h"
#include "manager/services/placement.h"

#define HOST(i, st, dr, kinds, hv, mem, used, bst)                                        \
	{                                                                                 \
		.id = i, .name = i, .status = st, .draining = dr, .backend_kinds = kinds, \
		.hypervisors = hv, .memory_mib = mem, .used_mib = used,                   \
		.backend_status = bst                                                     \
	}

static struct place_host hosts[] = {
	HOST("local", "ok", false, "smb,localfile", "firecracker", 1024, 512, "ok"),
	HOST("b", "ok", false, "smb", "qemu", 4096, 0, ""),
	HOST("c", "unreachable", false, "smb", "qemu", 8192, 0, "ok"),
	HOST("d", "ok", true, "smb", "qemu", 8192, 0, "ok"),
	HOST("e", "ok", false, "smb", "", 8192, 0, "ok"),
	HOST("f", "ok", false, "smb", "qemu", 8192, 0, "unreachable"),
};
#define N (sizeof hosts / sizeof hosts[0])

static void
test_most_memory_left_wins(void **state)
{
	struct place_need need = { "smb", NULL, 256, NULL, NULL };
	char why[512];
	size_t idx = 99;
	(void)state;

	assert_int_equal(place_choose(hosts, N, &need, &idx, why, sizeof why), 0);
	assert_string_equal(hosts[idx].id, "b");
	need.exclude_host_id = "b";
	assert_int_equal(place_choose(hosts, N, &need, &idx, why, sizeof why), 0);
	assert_string_equal(hosts[idx].id, "local");
	need.memory_mib = 600; /* local has 512 left */
	assert_int_equal(place_choose(hosts, N, &need, &idx, why, sizeof why), -ENOENT);
	assert_non_null(strstr(why,
		"host local: it has 512 MiB of memory free, 600 MiB needed"));
	assert_non_null(strstr(why, "host c: it is unreachable"));
	assert_non_null(strstr(why, "host d: it is draining"));
	assert_non_null(strstr(why, "host e: it has no hypervisor"));
	assert_non_null(strstr(why, "host f: the backend is unreachable there"));
}

static void
test_explicit_host_reason(void **state)
{
	struct place_need need = { "smb", NULL, 256, "d", NULL };
	char why[512];
	size_t idx = 99;
	(void)state;

	assert_int_equal(place_choose(hosts, N, &need, &idx, why, sizeof why), -ENOENT);
	assert_string_equal(why, "it is draining");
	need.host_id = "c";
	assert_int_equal(place_choose(hosts, N, &need, &idx, why, sizeof why), -ENOENT);
	assert_string_equal(why, "it is unreachable");
	need.host_id = "nope";
	assert_int_equal(place_choose(hosts, N, &need, &idx, why, sizeof why), -ENOENT);
	assert_non_null(strstr(why, "no host with id nope"));
	need.host_id = "local";
	assert_int_equal(place_choose(hosts, N, &need, &idx, why, sizeof why), 0);
	assert_int_equal(idx, 0);
	need.kind = "localfile";
	need.host_id = "b";
	assert_int_equal(place_choose(hosts, N, &need, &idx, why, sizeof why), -ENOENT);
	assert_non_null(strstr(why, "does not support localfile"));
}

static void
test_localfile_owner_and_unknown_memory(void **state)
{
	struct place_host h[] = {
		HOST("local", "ok", false, "smb,localfile", "qemu", 0, 100000, "ok"),
		HOST("b", "ok", false, "smb,localfile", "qemu", 65536, 0, ""),
	};
	struct place_need need = { "localfile", "local", 4096, NULL, NULL };
	char why[512];
	size_t idx = 99;
	(void)state;

	/* The owner is the only candidate; no memory figure, no limit. */
	assert_int_equal(place_choose(h, 2, &need, &idx, why, sizeof why), 0);
	assert_int_equal(idx, 0);
	need.host_id = "b";
	assert_int_equal(place_choose(h, 2, &need, &idx, why, sizeof why), -ENOENT);
	assert_string_equal(why, "the localfile backend belongs to host local");
	assert_int_equal(place_choose(h, 0, &need, &idx, why, sizeof why), -ENOENT);
	need.host_id = NULL;
	assert_int_equal(place_choose(h, 0, &need, &idx, why, sizeof why), -ENOENT);
	assert_string_equal(why, "there is no host");
	assert_true(place_list_has("smb,localfile", "localfile"));
	assert_false(place_list_has("smb,localfile", "local"));
	assert_false(place_list_has("", "smb"));
}

static void
test_boot_files_in_image_dir(void **state)
{
	struct place_host h[] = {
		HOST("a", "ok", false, "smb", "qemu", 8192, 0, "ok"),
		HOST("b", "ok", false, "smb", "qemu", 4096, 0, "ok"),
		HOST("c", "ok", false, "smb", "qemu", 2048, 0, "ok"),
	};
	struct place_need need = { "smb", NULL, 256, NULL, NULL, "deb.ext4", NULL };
	const char *files[] = { "deb.vmlinuz", "deb.initrd", NULL };
	char why[512];
	size_t idx = 99;
	(void)state;

	/* a: the image but no kernel; b: the image and a shared vmlinuz; c:
	 * never reported its image dir, so not checked. */
	h[0].images = "deb.ext4\nother.vmlinuz";
	h[1].images = "vmlinuz\ndeb.ext4";
	h[2].images = NULL;
	assert_int_equal(place_choose(h, 3, &need, &idx, why, sizeof why), 0);
	assert_string_equal(h[idx].id, "b");
	need.host_id = "a";
	assert_int_equal(place_choose(h, 3, &need, &idx, why, sizeof why), -ENOENT);
	assert_non_null(strstr(why, "it has no kernel for deb.ext4 in its image dir"));
	/* A known empty image dir has nothing. */
	h[1].images = "";
	need.host_id = "b";
	assert_int_equal(place_choose(h, 3, &need, &idx, why, sizeof why), -ENOENT);
	assert_string_equal(why, "it has no deb.ext4 in its image dir");
	need.host_id = NULL;
	assert_int_equal(place_choose(h, 3, &need, &idx, why, sizeof why), 0);
	assert_string_equal(h[idx].id, "c");
	/* A moving VM needs its kernel and initrd, not the base image. */
	need.boot_image = NULL;
	need.files = files;
	h[0].images = "deb.vmlinuz\ndeb.initrd";
	h[1].images = "deb.vmlinuz\ndeb.ext4";
	h[2].images = "deb.vmlinuz.old\ndeb.initrd";
	need.exclude_host_id = "a";
	assert_int_equal(place_choose(h, 3, &need, &idx, why, sizeof why), -ENOENT);
	assert_non_null(strstr(why, "host a: it is the VM's current host"));
	assert_non_null(strstr(why, "host b: it has no deb.initrd in its image dir"));
	assert_non_null(strstr(why, "host c: it has no deb.vmlinuz in its image dir"));
	need.exclude_host_id = "c";
	assert_int_equal(place_choose(h, 3, &need, &idx, why, sizeof why), 0);
	assert_string_equal(h[idx].id, "a");
	/* Empty entries (no initrd) are not asked for. */
	files[1] = "";
	need.exclude_host_id = "a";
	assert_int_equal(place_choose(h, 3, &need, &idx, why, sizeof why), 0);
	assert_string_equal(h[idx].id, "b");
}

static bool
names_has(void *ctx, const char *name)
{
	return place_names_has(ctx, name);
}

static void
test_image_boot_pick(void **state)
{
	char k[129], i[129];
	(void)state;

	image_boot_pick(names_has, "a.ext4\na.vmlinux\nvmlinuz\na.initrd", "a.ext4", k, i);
	assert_string_equal(k, "a.vmlinux");
	assert_string_equal(i, "a.initrd");
	image_boot_pick(names_has, "a.ext4\nvmlinux\nb.initrd", "a.ext4", k, i);
	assert_string_equal(k, "vmlinux");
	assert_string_equal(i, "");
	image_boot_pick(names_has, "a.ext4\nab.vmlinuz", "a.ext4", k, i);
	assert_string_equal(k, "");
	assert_true(place_names_has("x\ny.ext4\nz", "y.ext4"));
	assert_false(place_names_has("x\ny.ext4\nz", "y.ext"));
	assert_false(place_names_has("x\ny.ext4z", "y.ext4"));
	assert_false(place_names_has(NULL, "x"));
	assert_false(place_names_has("", "x"));
	assert_false(place_names_has("x", ""));
}

static void
test_pin_check(void **state)
{
	uint8_t sha[32];
	char want[TLS_FP_SIZE];
	struct agent_pin p = { 0 };
	(void)state;

	for (int i = 0; i < 32; i++)
		sha[i] = (uint8_t)(i * 7);
	tls_fingerprint_format(sha, want);
	memcpy(p.want, want, sizeof want);
	assert_true(agent_pin_check(&p, sha));
	assert_false(p.mismatch);
	assert_string_equal(p.seen, want);
	sha[31] ^= 1;
	assert_false(agent_pin_check(&p, sha));
	assert_true(p.mismatch);
	assert_string_not_equal(p.seen, want);
	/* A probe accepts anything and records it. */
	struct agent_pin probe = { .probe = true };
	assert_true(agent_pin_check(&probe, sha));
	assert_string_equal(probe.seen, p.seen);
	/* An empty pin never matches. */
	struct agent_pin none = { 0 };
	assert_false(agent_pin_check(&none, sha));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_most_memory_left_wins),
		cmocka_unit_test(test_explicit_host_reason),
		cmocka_unit_test(test_localfile_owner_and_unknown_memory),
		cmocka_unit_test(test_boot_files_in_image_dir),
		cmocka_unit_test(test_image_boot_pick),
		cmocka_unit_test(test_pin_check),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
