/* bench/smbc_direct: libsmbclient called directly, the yardstick for
 * bench/bridge.py (not installed).
 *
 *   smbc_direct URL MODE BS FILE_MIB SECONDS JOBS [FLUSH_MIB]
 *
 * URL is a file on a guest share (smb://127.0.0.1:PORT/guest/name). MODE
 * is write (sequential, fills the file once, then wraps), read
 * (sequential), randread or randwrite; BS the I/O size in bytes. JOBS
 * processes run at once, each with its own context (its own connection):
 * Debian 12's libsmbclient is not thread-safe. FLUSH_MIB > 0: a writer
 * flushes the file on the server (the bridge's own flush, durable.c) after
 * every FLUSH_MIB written: what the bridge's replay journal of that cap
 * forces, so the yardstick keeps the same promise. Prints one line:
 * "ios BYTES_MOVED SECONDS". Exit 1 on any error, with the reason. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <libsmbclient.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smbfs/ops_internal.h"

struct job {
	const char *url, *mode;
	size_t bs;
	uint64_t size, flush_every;
	double seconds;
	unsigned id;
};

static void
auth_fn(SMBCCTX *c, const char *srv, const char *shr, char *wg, int wglen, char *un,
	int unlen, char *pw, int pwlen)
{
	(void)c;
	(void)srv;
	(void)shr;
	(void)wg;
	(void)wglen;
	if (unlen > 0)
		un[0] = '\0';
	if (pwlen > 0)
		pw[0] = '\0';
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static SMBCCTX *
context(void)
{
	static const char conf[] = "[global]\n\tclient min protocol = SMB2_02\n";
	char path[64];
	SMBCCTX *ctx = smbc_new_context();
	int fd = memfd_create("smbc_direct.conf", MFD_CLOEXEC);

	if (!ctx || fd < 0 ||
		write(fd, conf, sizeof conf - 1) != (ssize_t)(sizeof conf - 1))
		return NULL;
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	smbc_setConfiguration(ctx, path);
	close(fd);
	smbc_setDebug(ctx, 0);
	smbc_setFunctionAuthDataWithContext(ctx, auth_fn);
	smbc_setOptionNoAutoAnonymousLogin(ctx, 0);
	smbc_setOptionUseKerberos(ctx, 0);
	smbc_setOptionFallbackAfterKerberos(ctx, 1);
	return smbc_init_context(ctx) ? ctx : NULL;
}

static int
transfer(SMBCCTX *ctx, SMBCFILE *f, const struct job *j, char *buf, uint64_t off)
{
	bool wr = strstr(j->mode, "write") != NULL;
	ssize_t n;

	if (smbc_getFunctionLseek(ctx)(ctx, f, (off_t)off, SEEK_SET) < 0)
		return -1;
	n = wr ? smbc_getFunctionWrite(ctx)(ctx, f, buf, j->bs)
	       : smbc_getFunctionRead(ctx)(ctx, f, buf, j->bs);
	return n == (ssize_t)j->bs ? 0 : -1;
}

/* One process: I/O for j->seconds; writes "ios bytes seconds" to out. */
static int
run_job(const struct job *j, int out)
{
	SMBCCTX *ctx = context();
	uint64_t blocks = j->size / j->bs, ios = 0, seq = 0, unflushed = 0;
	unsigned seed = 12345u + j->id * 7919u;
	char *buf = malloc(j->bs), line[96];
	SMBCFILE *f;
	double t0, t;

	if (!ctx || !buf || blocks == 0)
		return 1;
	memset(buf, 0x5a, j->bs);
	f = smbc_getFunctionOpen(ctx)(ctx, j->url, O_RDWR | O_CREAT, 0644);
	if (!f) {
		fprintf(stderr, "open %s: %s\n", j->url, strerror(errno));
		return 1;
	}
	t0 = now_s();
	do {
		uint64_t b = strncmp(j->mode, "rand", 4) == 0
				     ? (uint64_t)rand_r(&seed) % blocks
				     : (seq++ + j->id * blocks / 4) % blocks;

		if (transfer(ctx, f, j, buf, b * j->bs) < 0) {
			fprintf(stderr, "%s at %llu: %s\n", j->mode,
				(unsigned long long)(b * j->bs), strerror(errno));
			return 1;
		}
		ios++;
		unflushed += j->bs;
		if (j->flush_every && unflushed >= j->flush_every) {
			int r = smbfs_flush_file(f);

			if (r < 0) {
				fprintf(stderr, "flush: %s\n", strerror(-r));
				return 1;
			}
			unflushed = 0;
		}
		t = now_s() - t0;
	} while (t < j->seconds);
	smbc_getFunctionClose(ctx)(ctx, f);
	smbc_free_context(ctx, 1);
	free(buf);
	snprintf(line, sizeof line, "%llu %llu %.6f\n", (unsigned long long)ios,
		(unsigned long long)(ios * j->bs), t);
	return write(out, line, strlen(line)) > 0 ? 0 : 1;
}

int
main(int argc, char **argv)
{
	struct job j;
	unsigned jobs;
	int pfd[2], status, fail = 0;
	unsigned long long ios = 0, bytes = 0, a, b;
	double secs = 0, s;
	FILE *in;

	if (argc != 7 && argc != 8) {
		fprintf(stderr, "usage: smbc_direct URL MODE BS FILE_MIB SECONDS JOBS "
				"[FLUSH_MIB]\n");
		return 1;
	}
	j = (struct job){ .url = argv[1],
		.mode = argv[2],
		.bs = strtoul(argv[3], NULL, 10),
		.size = strtoull(argv[4], NULL, 10) << 20,
		.seconds = atof(argv[5]),
		.flush_every = argc == 8 ? strtoull(argv[7], NULL, 10) << 20 : 0 };
	jobs = (unsigned)strtoul(argv[6], NULL, 10);
	if (!j.bs || !jobs || jobs > 64 || pipe(pfd) < 0)
		return 1;
	if (j.flush_every && smbfs_durable_init() < 0) {
		fprintf(stderr, "no flush: %s\n", smbfs_durable_unavailable());
		return 1;
	}
	for (unsigned i = 0; i < jobs; i++) {
		pid_t pid = fork();

		if (pid == 0) {
			j.id = i;
			_exit(run_job(&j, pfd[1]));
		}
		if (pid < 0)
			return 1;
	}
	close(pfd[1]);
	while (wait(&status) > 0)
		fail |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
	in = fdopen(pfd[0], "r");
	while (in && fscanf(in, "%llu %llu %lf", &a, &b, &s) == 3) {
		ios += a;
		bytes += b;
		secs = s > secs ? s : secs;
	}
	if (fail || secs <= 0)
		return 1;
	printf("%llu %llu %.6f\n", ios, bytes, secs);
	return 0;
}
