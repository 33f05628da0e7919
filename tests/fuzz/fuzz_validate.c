/* libFuzzer target for the allow-list validators. Besides "no crash, no
 * UB", it checks properties: a canonical value validates again to itself,
 * an accepted option list joins to a string that parses to the same list,
 * and nothing accepted carries a byte that could split a mount option or a
 * line.
 *
 * clang -std=gnu11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *   tests/fuzz/fuzz_validate.c src/common/validate.c src/common/validate_opts.c src/common/nq_error.c \
 *   -o fuzz_validate && ./fuzz_validate -max_total_time=60 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/validate.h"

#define CHECK(c)                                                                          \
	do {                                                                              \
		if (!(c))                                                                 \
			__builtin_trap();                                                 \
	} while (0)

static void
fuzz_server(const char *in)
{
	char out[NQ_SERVER_MAX + 1], again[NQ_SERVER_MAX + 1];
	struct nq_error err = { 0 };

	if (validate_server("server", in, out, sizeof out, &err) < 0) {
		CHECK(strcmp(err.code, "invalid_field") == 0);
		return;
	}
	CHECK(strspn(out, "abcdefghijklmnopqrstuvwxyz0123456789.-:[]") == strlen(out));
	CHECK(out[0] != '-');
	CHECK(validate_server("server", out, again, sizeof again, &err) == 0);
	CHECK(strcmp(out, again) == 0);
}

static void
fuzz_share_subdir(const char *in)
{
	char out[NQ_SUBDIR_MAX + 1], again[NQ_SUBDIR_MAX + 1];
	struct nq_error err = { 0 };

	if (validate_share("share", in, &err) == 0)
		CHECK(!strpbrk(in, "/\\,=\n\r") && strlen(in) <= NQ_SHARE_MAX);
	if (validate_subdir("subdir", in, out, sizeof out, &err) < 0)
		return;
	CHECK(out[0] != '/' && !strstr(out, "//") && !strpbrk(out, "\\\n\r"));
	CHECK(strcmp(out, "..") != 0 && strncmp(out, "../", 3) != 0 &&
		!strstr(out, "/../") &&
		(strlen(out) < 3 || strcmp(out + strlen(out) - 3, "/..") != 0));
	CHECK(validate_subdir("subdir", out, again, sizeof again, &err) == 0);
	CHECK(strcmp(out, again) == 0);
}

static void
fuzz_mount_options(const char *in)
{
	struct mount_opts o = { 0 }, o2 = { 0 };
	struct nq_error err = { 0 };
	char joined[NQ_OPTS_MAX + 1], joined2[NQ_OPTS_MAX + 1];

	if (validate_mount_options("mount_options", in, &o, &err) < 0) {
		CHECK(strcmp(err.field, "mount_options") == 0);
		CHECK(o.n == 0);
		return;
	}
	CHECK(o.n <= NQ_MAX_EXTRA_OPTS);
	for (unsigned i = 0; i < o.n; i++) {
		CHECK(o.items[i][0] != '\0');
		CHECK(!strpbrk(o.items[i], ", \n\r\"'\\"));
		CHECK(strncmp(o.items[i], "cred", 4) != 0);
		CHECK(strncmp(o.items[i], "pass", 4) != 0);
		CHECK(strncmp(o.items[i], "user", 4) != 0);
		CHECK(strncmp(o.items[i], "uid", 3) != 0);
	}
	CHECK(mount_opts_join(&o, joined, sizeof joined) == 0);
	CHECK(strcmp(joined, in) == 0);
	CHECK(validate_mount_options("mount_options", joined, &o2, &err) == 0);
	CHECK(o2.n == o.n && o2.port == o.port);
	CHECK(mount_opts_join(&o2, joined2, sizeof joined2) == 0);
	CHECK(strcmp(joined, joined2) == 0);
	mount_opts_release(&o);
	mount_opts_release(&o2);
}

static void
fuzz_misc(const char *in, size_t len)
{
	char uuid[NQ_UUID_LEN + 1];
	struct nq_error err = { 0 };

	(void)validate_smb_version("smb_version", in, &err);
	(void)validate_uuid("id", in, uuid, &err);
	/* A backend id becomes a file name: never a path, never hidden. */
	if (validate_backend_id("backend_id", in, uuid, &err) == 0)
		CHECK(uuid[0] != '.' && uuid[0] != '-' && !strchr(uuid, '/') &&
			strlen(uuid) <= NQ_UUID_LEN && strlen(uuid) > 0);
	(void)validate_username("username", in, &err);
	(void)validate_domain("domain", in, &err);
	(void)validate_password("password", in, len, &err);
	(void)validate_name("name", in, &err);
	(void)validate_image_name("image", in, &err);
	if (validate_path_under("mount_base", in, "/var/lib/nqrust", &err) == 0)
		CHECK(strncmp(in, "/var/lib/nqrust", 15) == 0 &&
			(in[15] == '\0' || in[15] == '/') && !strstr(in, "/../") &&
			!strstr(in, "/./") && !strstr(in, "//") &&
			strcmp(in + strlen(in) - 3, "/..") != 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in;

	if (size > 4096)
		return 0;
	in = malloc(size + 1);
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	fuzz_server(in);
	fuzz_share_subdir(in);
	fuzz_mount_options(in);
	fuzz_misc(in, strlen(in));
	free(in);
	return 0;
}
