/* nqrust-smbfs copy_file_range: a server-side copy between two files of
 * this mount with smbc_splice (SMB2 COPYCHUNK; Samba >= 4.15 serves it
 * with copy_file_range(), a reflink on xfs/btrfs). No file data crosses
 * the wire.
 *
 * smbc_splice copies count bytes from the source handle's offset to the
 * destination handle's offset (both set with smbc_lseek) on one
 * connection; both handles belong to our one context and share.
 *
 * One FUSE request copies at most COPY_REQ_MAX bytes in COPY_CHUNK steps
 * (one attempt each, so other requests get the connection in between) and
 * returns a short count beyond that, or when INTERRUPT arrives or the
 * io_deadline= cutoff (from the request's arrival, checked before every
 * chunk) passes: the caller asks again for the rest.
 *
 * Where the server refuses (COPYCHUNK not supported, a source range past
 * its end, ...) the answer is EINVAL: the kernel's FUSE layer turns
 * EOPNOTSUPP and EXDEV into a copy through us by splice(), which would
 * hide the refusal from the caller; EINVAL reaches copy_file_range's
 * caller, which copies by itself (coreutils, Python, the agent's
 * fs_sparse_copy all do). NQRUST_SMBFS_REFUSE_COPY=1 in the environment
 * refuses every copy that way (tests of that fallback).
 *
 * Durability: a spliced range is on the server but, like a write, not
 * yet on stable storage, and the replay journal cannot hold it (it holds
 * data, not references). So the destination is flushed (SMB2 FLUSH) once
 * per request before it is answered, and when the connection changed
 * between a splice and that flush the request splices again from its
 * start: nothing a copy acknowledged depends on the journal. A following
 * fsync flushes again as always. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/ops_internal.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <stdlib.h>
#include <string.h>

/* The most one COPYCHUNK request may cover on Samba and Windows. */
#define COPY_CHUNK (16 * 1024 * 1024)
#define COPY_REQ_MAX (16 * COPY_CHUNK)

struct copy_args {
	struct fuse_file_info *fi_in, *fi_out;
	off_t off_in, off_out;
	size_t size;
	size_t done;  /* spliced so far (flushed only once the flush is done) */
	unsigned gen; /* the connection the splices since done = 0 went over */
	int64_t cutoff_ms;
};

static int
splice_progress(off_t n, void *priv)
{
	(void)n;
	(void)priv;
	return 1; /* go on */
}

/* Errors that mean "not this way", not "this failed". */
static bool
copy_refused(int r)
{
	switch (-r) {
	case EOPNOTSUPP:
	case ENOSYS:
	case EINVAL:
	case EXDEV:
	case ENOTTY:
	case ENXIO:
	case ENODATA:
		return true;
	default:
		return false;
	}
}

static int
splice_chunk(struct smbfs *fs, SMBCFILE *src, SMBCFILE *dst, struct copy_args *a,
	size_t want, size_t *ret_n)
{
	off_t n;

	if (smbc_getFunctionLseek(fs->ctx)(fs->ctx, src, a->off_in + (off_t)a->done,
		    SEEK_SET) < 0 ||
		smbc_getFunctionLseek(fs->ctx)(fs->ctx, dst, a->off_out + (off_t)a->done,
			SEEK_SET) < 0)
		return smb_err();
	n = smbc_getFunctionSplice(fs->ctx)(fs->ctx, src, dst, (off_t)want,
		splice_progress, NULL);
	if (n < 0)
		return smb_err();
	*ret_n = (size_t)n;
	return 0;
}

/* Unflushed splices went over a connection that broke: the server may
 * have lost them (a restart), so the request starts again from its
 * first byte; a splice is idempotent. */
static void
check_generation(struct smbfs *fs, struct copy_args *a)
{
	if (a->done > 0 && a->gen != fs->gen)
		a->done = 0;
	if (a->done == 0)
		a->gen = fs->gen;
}

/* Splice one chunk: 0, 1 when the source ended, or -errno. */
static int
copy_attempt(struct smbfs *fs, void *arg)
{
	struct copy_args *a = arg;
	SMBCFILE *src = fh_file_locked(fs, a->fi_in), *dst;
	size_t want, n = 0;
	int r;

	if (!src)
		return smb_err();
	dst = fh_file_locked(fs, a->fi_out);
	if (!dst)
		return smb_err();
	if (smbfs_cutoff_passed(a->cutoff_ms, smbfs_now_ms()))
		return -EIO; /* io_deadline: never sent again */
	check_generation(fs, a);
	want = a->size - a->done;
	if (want > COPY_CHUNK)
		want = COPY_CHUNK;
	r = splice_chunk(fs, src, dst, a, want, &n);
	if (r < 0)
		return r;
	a->done += n;
	return n == 0 ? 1 : 0;
}

/* Flush the destination: 0, 2 when the splices must be made again (the
 * connection changed since), or -errno. */
static int
flush_attempt(struct smbfs *fs, void *arg)
{
	struct copy_args *a = arg;
	SMBCFILE *dst = fh_file_locked(fs, a->fi_out);

	if (!dst)
		return smb_err();
	check_generation(fs, a);
	if (a->done == 0)
		return 2;
	return smbfs_flush_file(dst);
}

/* Splice until size, the source's end, INTERRUPT, the cutoff or an error;
 * then flush what was spliced. Returns 0 with a->done bytes copied and
 * flushed, or -errno (the splice's error when nothing was copied). */
static int
copy_request(struct smbfs *fs, struct copy_args *a)
{
	int r, fr;

	for (;;) {
		r = 0;
		while (a->done < a->size) {
			if (a->done > 0 &&
				(fuse_interrupted() ||
					smbfs_cutoff_passed(a->cutoff_ms, smbfs_now_ms())))
				break; /* answer what is done; the caller asks again */
			r = smbfs_call_update(fs, copy_attempt, a);
			if (r != 0)
				break;
		}
		if (a->done == 0)
			return r < 0 ? r : 0;
		fr = smbfs_call_update(fs, flush_attempt, a);
		if (fr == 2)
			continue; /* the connection changed: splice again */
		if (fr < 0)
			a->done = 0;
		return fr;
	}
}

static bool
copy_disabled(void)
{
	const char *v = getenv("NQRUST_SMBFS_REFUSE_COPY");

	return v && strcmp(v, "1") == 0;
}

ssize_t
smbfs_op_copy_file_range(const char *path_in, struct fuse_file_info *fi_in, off_t off_in,
	const char *path_out, struct fuse_file_info *fi_out, off_t off_out, size_t size,
	int flags)
{
	struct smbfs *fs = fs_get();
	struct copy_args a = { .fi_in = fi_in,
		.fi_out = fi_out,
		.off_in = off_in,
		.off_out = off_out,
		.size = size };
	int r = 0;

	(void)path_in;
	(void)path_out;
	if (fs->view.ro)
		return -EROFS;
	if (flags != 0 || off_in < 0 || off_out < 0 || !fi_in || !fi_out)
		return -EINVAL;
	/* One handle has one offset: a copy within it cannot be spliced. */
	if (copy_disabled() || fh_get(fi_in) == fh_get(fi_out))
		return -EINVAL;
	if (a.size > COPY_REQ_MAX)
		a.size = COPY_REQ_MAX;
	a.cutoff_ms = smbfs_send_cutoff_ms(smbfs_now_ms(), fs->io_deadline_s);
	r = copy_request(fs, &a);
	if (a.done > 0)
		return (ssize_t)a.done;
	if (r < 0 && copy_refused(r))
		return -EINVAL;
	return r < 0 ? r : 0;
}
