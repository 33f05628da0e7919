/* The lease file protocol on one volume directory (leases.h). Each
 * operation runs in a deadline worker on a private copy of its struct
 * lease_op, so a hung share costs a worker, never a lock or the fencer.
 *
 * Writes: a fresh lease is created with O_CREAT|O_EXCL (the SMB server
 * lets exactly one create win); a renewal writes <name>.<agent_id>.tmp,
 * fsyncs it and renames it over the lease. Through libsmbclient a rename
 * over an existing file is an unlink and a rename, so for one round trip
 * the lease is absent while the renewer's temp file exists: an acquirer
 * that finds no lease therefore also looks for a recent temp file of
 * another agent and backs off when there is one. docs/leases.md. */
#include "agent/storage/leases.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/macro.h"

static long long
mtime_ms(const struct stat *st)
{
	return (long long)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
}

/* What the lease file name holds now: absent, unreadable (why), or a
 * lease. -errno only when the directory itself cannot be read. */
static int
read_view(int dfd, const char *name, struct lease_view *v)
{
	char buf[LEASE_FILE_MAX + 1];
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t len = 0;

	memset(v, 0, sizeof *v);
	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return 0;
	v->present = true;
	if (fd < 0 && errno == ELOOP) {
		snprintf(v->why, sizeof v->why, "the lease is a symbolic link");
		return fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0
			       ? (v->mtime_ms = mtime_ms(&st), 0)
			       : 0;
	}
	if (fd < 0 || fstat(fd, &st) < 0)
		return negerrno();
	v->mtime_ms = mtime_ms(&st);
	if (!S_ISREG(st.st_mode)) {
		snprintf(v->why, sizeof v->why, "the lease is not a regular file");
		return 0;
	}
	while (len < sizeof buf) {
		ssize_t n = read(fd, buf + len, sizeof buf - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return negerrno();
		if (n == 0)
			break;
		len += (size_t)n;
	}
	v->valid = lease_parse(buf, len, &v->l, v->why, sizeof v->why) == 0;
	return 0;
}

static int
write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return negerrno();
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Fill op->mine for a write of generation gen, timed from now. */
static int
stamp(struct lease_op *op, long long gen, char *buf, size_t bufsz)
{
	op->t0_mono_ms = lease_mono_ms();
	op->mine.renewed_at_ms = lease_now_ms();
	op->mine.expires_at_ms = op->mine.renewed_at_ms + (long long)op->lease_seconds * 1000;
	op->mine.generation = gen;
	op->written_gen = gen;
	return lease_format(&op->mine, buf, bufsz);
}

static int
write_file(int dfd, const char *name, int flags, const char *buf, size_t n)
{
	_cleanup_close_ int fd = openat(dfd, name,
		O_WRONLY | O_NOFOLLOW | O_CLOEXEC | flags, 0644);
	int r;

	if (fd < 0)
		return negerrno();
	if ((r = write_all(fd, buf, n)) < 0 || (fsync(fd) < 0 && (r = negerrno()) < 0)) {
		/* Closed first: an SMB server refuses to remove a file we
		 * still hold open (a sharing violation, retried for seconds). */
		close(TAKE_FD(fd));
		unlinkat(dfd, name, 0);
		return r;
	}
	return 0;
}

/* Temp file, fsync, rename over, fsync the directory where possible. */
static int
write_over(struct lease_op *op, int dfd, long long gen)
{
	char buf[LEASE_FILE_MAX];
	int n = stamp(op, gen, buf, sizeof buf), r;

	if (n < 0)
		return n;
	r = write_file(dfd, op->tmp, O_CREAT | O_TRUNC, buf, (size_t)n);
	if (r < 0)
		return r;
	if (renameat(dfd, op->tmp, dfd, op->name) < 0) {
		r = negerrno();
		unlinkat(dfd, op->tmp, 0);
		return r;
	}
	(void)fsync(dfd); /* not every file system syncs a directory */
	return 0;
}

/* A full share (no room for the temp file): overwrite the lease in place,
 * in the blocks it has. The new record is padded with spaces to the old
 * length (JSON ignores them), so the write needs no new block unless it
 * grows by a few bytes inside its last one. A reader that meets a torn
 * record judges it corrupt: held (docs/leases.md), the safe side. */
static int
write_in_place(struct lease_op *op, int dfd, long long gen)
{
	char buf[LEASE_FILE_MAX];
	int n = stamp(op, gen, buf, sizeof buf), r;
	_cleanup_close_ int fd = -1;
	struct stat st;
	size_t len;

	if (n < 0)
		return n;
	fd = openat(dfd, op->name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0)
		return negerrno();
	len = (size_t)n;
	if (st.st_size > (off_t)len && st.st_size < (off_t)sizeof buf) {
		memset(buf + len, ' ', (size_t)st.st_size - len);
		len = (size_t)st.st_size;
	}
	errno = 0;
	if (pwrite(fd, buf, len, 0) != (ssize_t)len)
		return errno ? negerrno() : -EIO;
	r = fsync(fd) < 0 ? negerrno() : 0;
	return r;
}

/* A recent temp file of another agent's renewal: its rename may be
 * between its unlink and its rename right now. */
static bool
renewal_in_flight(const struct lease_op *op, int dfd)
{
	long long now = lease_now_ms(), L = (long long)op->lease_seconds * 1000;
	size_t len = strlen(op->name);
	struct dirent *de;
	bool busy = false;
	DIR *d;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return true; /* cannot tell: be careful */
	}
	while (!busy && (de = readdir(d))) {
		size_t n = strlen(de->d_name);
		struct stat st;

		if (n <= len + 4 || strncmp(de->d_name, op->name, len) ||
			de->d_name[len] != '.' || strcmp(de->d_name + n - 4, ".tmp") ||
			!strcmp(de->d_name, op->tmp))
			continue;
		busy = fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		       now - mtime_ms(&st) < L;
	}
	closedir(d);
	return busy;
}

static bool
same_view(const struct lease_view *a, const struct lease_view *b)
{
	if (a->present != b->present || a->valid != b->valid)
		return false;
	if (a->valid)
		return !memcmp(&a->l, &b->l, sizeof a->l);
	return a->mtime_ms == b->mtime_ms;
}

/* Move the expired lease we judged out of the way, and check that what
 * moved is that lease: another agent may have taken it over meanwhile
 * (then put it back and lose this round). */
static int
move_expired(struct lease_op *op, int dfd)
{
	char stale[sizeof op->tmp];
	struct lease_view moved;
	int r;

	snprintf(stale, sizeof stale, "%s.%s.stale", op->name, op->mine.agent_id);
	if (renameat(dfd, op->name, dfd, stale) < 0)
		return errno == ENOENT ? -EAGAIN : negerrno();
	r = read_view(dfd, stale, &moved);
	if (r < 0 || !same_view(&moved, &op->seen)) {
		(void)renameat2(dfd, stale, dfd, op->name, RENAME_NOREPLACE);
		return r < 0 ? r : -EAGAIN;
	}
	unlinkat(dfd, stale, 0);
	return 0;
}

static bool
is_mine(const struct lease_view *v, const struct lease *mine)
{
	return v->present && v->valid && !strcmp(v->l.agent_id, mine->agent_id) &&
	       !strcmp(v->l.vm_id, mine->vm_id);
}

static int
create_fresh(struct lease_op *op, int dfd, long long gen)
{
	char buf[LEASE_FILE_MAX];
	int n;

	if (renewal_in_flight(op, dfd))
		return -EAGAIN;
	n = stamp(op, gen, buf, sizeof buf);
	if (n < 0)
		return n;
	n = write_file(dfd, op->name, O_CREAT | O_EXCL, buf, (size_t)n);
	return n == -EEXIST ? -EAGAIN : n;
}

/* Creating a lease or moving an expired one away takes a guard first,
 * <name>.guard made with O_CREAT|O_EXCL, so one agent at a time does it:
 * without it, an agent that judged an older lease expired could move a
 * lease another agent had just created out of the way, and a third could
 * create one in that window — two holders. A guard older than this was
 * left by a crashed agent: it is removed and the round lost. */
#define LEASE_GUARD_STALE_MS 30000

static int
take_guard(const struct lease_op *op, int dfd, char *guard, size_t sz)
{
	struct stat st;
	int fd;

	snprintf(guard, sz, "%s.guard", op->name);
	fd = openat(dfd, guard, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
		return 0;
	}
	if (errno != EEXIST)
		return negerrno();
	if (fstatat(dfd, guard, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
		lease_now_ms() - mtime_ms(&st) > LEASE_GUARD_STALE_MS)
		unlinkat(dfd, guard, 0);
	return -EAGAIN;
}

/* With the guard held: judge the lease again and take it. */
static int
acquire_guarded(struct lease_op *op, int dfd)
{
	long long gen = 1;
	int r;

	if ((r = read_view(dfd, op->name, &op->seen)) < 0)
		return r;
	lease_decide(&op->seen, op->mine.agent_id, op->mine.volume_id, lease_now_ms(),
		op->lease_seconds, &op->d);
	if (op->seen.valid)
		gen = op->seen.l.generation + 1;
	switch (op->d.v) {
	case LEASE_HELD:
		return LEASE_ACQ_HELD;
	case LEASE_OURS:
		return write_over(op, dfd, gen);
	case LEASE_EXPIRED:
		if ((r = move_expired(op, dfd)) < 0)
			return r;
		return create_fresh(op, dfd, gen);
	case LEASE_FREE:
	default:
		return create_fresh(op, dfd, gen);
	}
}

int
lease_op_acquire(void *arg)
{
	struct lease_op *op = arg;
	_cleanup_close_ int dfd = open(op->dir,
		O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	struct lease_view after;
	char guard[sizeof op->tmp];
	int r;

	if (dfd < 0)
		return negerrno();
	if ((r = read_view(dfd, op->name, &op->seen)) < 0)
		return r;
	lease_decide(&op->seen, op->mine.agent_id, op->mine.volume_id, lease_now_ms(),
		op->lease_seconds, &op->d);
	if (op->d.v == LEASE_HELD)
		return LEASE_ACQ_HELD;
	if ((r = take_guard(op, dfd, guard, sizeof guard)) < 0)
		return r == -EAGAIN ? LEASE_ACQ_RACE : r;
	r = acquire_guarded(op, dfd);
	/* Re-read: a competitor that slipped in wins; we back off. */
	if (r == 0 && (r = read_view(dfd, op->name, &after)) == 0)
		r = is_mine(&after, &op->mine) && after.l.generation == op->written_gen
			    ? 0
			    : LEASE_ACQ_RACE;
	unlinkat(dfd, guard, 0);
	if (r == -EAGAIN)
		return LEASE_ACQ_RACE;
	return r;
}

int
lease_op_renew(void *arg)
{
	struct lease_op *op = arg;
	_cleanup_close_ int dfd = open(op->dir,
		O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (dfd < 0)
		return negerrno();
	if ((r = read_view(dfd, op->name, &op->seen)) < 0)
		return r;
	/* Another agent's expired lease while ours was renewed in time: a
	 * renewal of a host that fenced long ago, landing late after a
	 * partition healed. Its holder is gone; keep our lease. */
	op->reclaimed = !op->adopted && op->seen.valid &&
			strcmp(op->seen.l.agent_id, op->mine.agent_id) &&
			!strcmp(op->seen.l.volume_id, op->mine.volume_id) &&
			op->seen.l.expires_at_ms <= lease_now_ms();
	if (!is_mine(&op->seen, &op->mine) && !op->reclaimed)
		return -ESTALE;
	/* Adopted after a restart: an expired lease may have been taken
	 * over and released meanwhile; we cannot know, so we fence. */
	if (op->adopted && op->seen.l.expires_at_ms <= lease_now_ms())
		return -ESTALE;
	r = write_over(op, dfd, op->seen.l.generation + 1);
	/* Only our own lease is rewritten in place: taking one over must
	 * replace the file whole. */
	op->in_place = false;
	if ((r == -ENOSPC || r == -EDQUOT) && !op->reclaimed &&
		(r = write_in_place(op, dfd, op->seen.l.generation + 1)) == 0)
		op->in_place = true;
	if (r == 0 && op->reclaimed && (r = read_view(dfd, op->name, &op->seen)) == 0 &&
		!is_mine(&op->seen, &op->mine))
		return -ESTALE;
	if (r < 0 && read_view(dfd, op->name, &op->seen) == 0 &&
		!is_mine(&op->seen, &op->mine))
		return -ESTALE;
	return r;
}

int
lease_op_release(void *arg)
{
	struct lease_op *op = arg;
	_cleanup_close_ int dfd = open(op->dir,
		O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int r;

	if (dfd < 0)
		return negerrno();
	unlinkat(dfd, op->tmp, 0);
	if ((r = read_view(dfd, op->name, &op->seen)) < 0)
		return r;
	if (!is_mine(&op->seen, &op->mine))
		return 0;
	return unlinkat(dfd, op->name, 0) < 0 && errno != ENOENT ? negerrno() : 0;
}
