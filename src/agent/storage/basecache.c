/* The base cache: fill an entry once, clone volumes from it on the
 * server. See basecache.h. */
#include "agent/storage/basecache.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/debug_gate.h"
#include "common/log.h"
#include "common/macro.h"
#include "agent/smb/driver.h"
#include "agent/storage/basecache_internal.h"

/* A fill marker whose fill shows no progress (its temp file neither
 * appears nor grows) for this long belongs to a filler that died. */
#define FILL_STALE_SECS 120
/* How long a create waits for another one's fill before it copies from
 * the image itself. */
#define FILL_WAIT_SECS 900
#define FILL_POLL_MS 200

const char *
basecache_outcome_name(enum basecache_outcome o)
{
	switch (o) {
	case BASECACHE_HIT:
		return "hit";
	case BASECACHE_FILLED:
		return "filled";
	case BASECACHE_REFUSED:
		return "refused";
	case BASECACHE_SKIPPED:
		return "skipped";
	case BASECACHE_FAILED:
		return "failed";
	case BASECACHE_OFF:
		break;
	}
	return "off";
}

void
bc_name(char *buf, size_t bufsz, const char *hex, const char *suffix)
{
	snprintf(buf, bufsz, "%s%s", hex, suffix);
}

static bool
entry_ready(int cdfd, const char *hex)
{
	char raw[BC_NAME_MAX], ext[BC_NAME_MAX];
	struct stat st;

	bc_name(raw, sizeof raw, hex, ".raw");
	bc_name(ext, sizeof ext, hex, ".extents");
	return fstatat(cdfd, raw, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	       fstatat(cdfd, ext, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* Whether img is still the file *ist described when it was hashed: an
 * image rewritten during the fill would leave an entry whose name (the old
 * content's hash) does not match its data, for every host to clone. */
static bool
image_unchanged(int img, const struct stat *ist)
{
	struct stat now;

	return fstat(img, &now) == 0 && now.st_ino == ist->st_ino &&
	       now.st_size == ist->st_size && now.st_mtim.tv_sec == ist->st_mtim.tv_sec &&
	       now.st_mtim.tv_nsec == ist->st_mtim.tv_nsec;
}

/* Copy the image into a temp file, then its map, then rename the data
 * into place: <hex>.raw exists only complete and with its map. */
static int
fill(struct agent *a, int cdfd, const char *hex, const char *tmp, int img,
	const char *image, const struct stat *ist)
{
	_cleanup_free_ struct fs_range *ext = NULL;
	_cleanup_close_ int fd = -1;
	struct copy_stats st;
	char raw[BC_NAME_MAX];
	size_t n = 0;
	int r;

	(void)a;
	fd = openat(cdfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return negerrno();
	r = fs_data_extents(img, &ext, &n);
	if (r >= 0)
		r = fs_copy_ranges(img, fd, ext, n, 0, &st);
	if (r >= 0 && ftruncate(fd, ist->st_size) < 0)
		r = negerrno();
	if (r >= 0 && fsync(fd) < 0)
		r = negerrno();
	/* SMB servers refuse to rename an open file. */
	if (close(TAKE_FD(fd)) < 0 && r >= 0)
		r = negerrno();
	if (r >= 0)
		r = bc_extents_write(cdfd, hex, image, (uint64_t)ist->st_size, ext, n);
	/* Test pause point: the data is in the temp file, the entry not yet
	 * there; a second create must wait, not fill again. */
	debug_gate("cache_fill", NULL, NULL);
	if (r >= 0 && !image_unchanged(img, ist)) {
		char ext_name[BC_NAME_MAX];

		log_warn("base cache: image %s changed while it was copied; the entry "
			 "sha256=%s is not kept",
			image, hex);
		bc_name(ext_name, sizeof ext_name, hex, ".extents");
		unlinkat(cdfd, ext_name, 0);
		r = -ESTALE;
	}
	bc_name(raw, sizeof raw, hex, ".raw");
	if (r >= 0 && renameat(cdfd, tmp, cdfd, raw) < 0)
		r = negerrno();
	if (r < 0) {
		unlinkat(cdfd, tmp, 0);
		return r;
	}
	fsync(cdfd);
	log_info("base cache entry filled sha256=%s image=%s size=%jd data_bytes=%llu",
		hex, image, (intmax_t)ist->st_size, (unsigned long long)st.bytes_written);
	return 0;
}

/* Take the fill marker: 1 when it is ours (its content names our temp
 * file), 0 when another fill holds it, -errno on failure. */
static int
take_marker(int cdfd, const char *marker, const char *tmp)
{
	_cleanup_close_ int fd = -1;
	size_t len = strlen(tmp);

	fd = openat(cdfd, marker, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		0600);
	if (fd < 0)
		return errno == EEXIST ? 0 : negerrno();
	if (write(fd, tmp, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		int r = negerrno();

		close(TAKE_FD(fd));
		unlinkat(cdfd, marker, 0);
		return r;
	}
	return close(TAKE_FD(fd)) < 0 ? negerrno() : 1;
}

/* This agent process, among the incarnations of its agent id: a fill
 * marker that names our agent id with another incarnation was left by
 * this host's agent before it restarted, and nobody fills behind it. */
static char incarnation[9];
static pthread_once_t incarnation_once = PTHREAD_ONCE_INIT;

static void
incarnation_init(void)
{
	unsigned char rnd[4] = { 0 };

	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		memcpy(rnd, &(pid_t){ getpid() }, sizeof rnd);
	snprintf(incarnation, sizeof incarnation, "%02x%02x%02x%02x", rnd[0], rnd[1],
		rnd[2], rnd[3]);
}

/* ".<hex16>.raw.tmp-<agent8>-<incarnation8>-<random12>" */
static void
tmp_name(struct agent *a, const char *hex, char *buf, size_t bufsz)
{
	unsigned char rnd[6] = { 0 };

	pthread_once(&incarnation_once, incarnation_init);
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		memcpy(rnd, &(pid_t){ getpid() }, sizeof(pid_t));
	snprintf(buf, bufsz, ".%.16s.raw.tmp-%.8s-%s-%02x%02x%02x%02x%02x%02x", hex,
		a->agent_id, incarnation, rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
}

/* Whether the temp file a marker names (tmp, its content) belongs to an
 * earlier incarnation of this agent: same agent id, another process. */
static bool
left_by_earlier_self(struct agent *a, const char *tmp)
{
	const char *p = strstr(tmp, ".raw.tmp-");
	char mine[32];

	pthread_once(&incarnation_once, incarnation_init);
	if (!p)
		return false;
	p += strlen(".raw.tmp-");
	snprintf(mine, sizeof mine, "%.8s-", a->agent_id);
	if (strncmp(p, mine, strlen(mine)) != 0)
		return false; /* another agent's (or an older name): by time */
	p += strlen(mine);
	return strlen(p) > 8 && p[8] == '-' && strncmp(p, incarnation, 8) != 0;
}

/* What a waiter saw of another fill: its marker's mtime and its temp
 * file's size, and since when nothing changed. */
struct fill_watch {
	time_t marker_mtime;
	off_t tmp_size;
	bool seen;
	struct timespec since;
};

static double
secs_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (now.tv_nsec - t->tv_nsec) / 1e9;
}

/* Whether the fill behind marker is dead: no progress for
 * FILL_STALE_SECS, judged by this waiter's own clock (another host's
 * clock may differ) or by a marker that is that old without a temp
 * file. */
static bool
marker_stale(struct agent *a, int cdfd, const char *marker, struct fill_watch *w,
	bool *ret_self)
{
	_cleanup_free_ char *buf = NULL;
	struct stat ms, ts;
	off_t tsize = -1;
	size_t len;

	if (fstatat(cdfd, marker, &ms, AT_SYMLINK_NOFOLLOW) < 0)
		return false; /* gone: the caller looks again */
	if (fs_read_file(cdfd, marker, 255, &buf, &len) == 0 && len > 1 &&
		buf[len - 1] == '\n') {
		buf[len - 1] = '\0';
		/* Its temp file goes with it: nobody writes it any more. */
		if ((*ret_self = left_by_earlier_self(a, buf))) {
			if (buf[0] == '.' && !strchr(buf, '/'))
				unlinkat(cdfd, buf, 0);
			return true;
		}
		if (buf[0] == '.' && !strchr(buf, '/') &&
			fstatat(cdfd, buf, &ts, AT_SYMLINK_NOFOLLOW) == 0)
			tsize = ts.st_size;
	}
	if (tsize < 0 && time(NULL) - ms.st_mtime > FILL_STALE_SECS)
		return true;
	if (!w->seen || w->marker_mtime != ms.st_mtime || w->tmp_size != tsize) {
		w->seen = true;
		w->marker_mtime = ms.st_mtime;
		w->tmp_size = tsize;
		clock_gettime(CLOCK_MONOTONIC, &w->since);
		return false;
	}
	return secs_since(&w->since) > FILL_STALE_SECS;
}

static bool room_for_entry(int vdfd, const struct stat *ist, const char *backend_id);

#define ENTRY_NO_ROOM 2

/* Make sure the entry exists: fill it, or wait for whoever fills it.
 * 1 when this call filled it, 0 when it was (or became) there,
 * ENTRY_NO_ROOM when it is not there and the share (volume dir vdfd) has
 * no room for it beside the volume. */
static int
ensure_entry(struct agent *a, int vdfd, const char *backend_id, int cdfd, const char *hex,
	int img, const char *image, const struct stat *ist)
{
	char marker[BC_NAME_MAX], tmp[BC_NAME_MAX];
	struct fill_watch w = { 0 };
	struct timespec start;
	bool room_checked = false;
	int r;

	bc_name(marker, sizeof marker, hex, ".filling");
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (entry_ready(cdfd, hex))
			return 0;
		if (!room_checked) {
			room_checked = true;
			if (!room_for_entry(vdfd, ist, backend_id))
				return ENTRY_NO_ROOM;
		}
		tmp_name(a, hex, tmp, sizeof tmp);
		r = take_marker(cdfd, marker, tmp);
		if (r < 0)
			return r;
		if (r > 0) {
			/* Someone may have finished between our look and our
			 * marker. */
			bool there = entry_ready(cdfd, hex);

			r = there ? 0 : fill(a, cdfd, hex, tmp, img, image, ist);
			unlinkat(cdfd, marker, 0);
			return r < 0 ? r : !there;
		}
		bool self = false;
		if (marker_stale(a, cdfd, marker, &w, &self)) {
			if (self)
				log_warn("base cache: removing the fill marker this agent left "
					 "before it restarted sha256=%s",
					hex);
			else
				log_warn("base cache: removing the fill marker of a fill that "
					 "made no progress for %ds sha256=%s",
					FILL_STALE_SECS, hex);
			unlinkat(cdfd, marker, 0);
			memset(&w, 0, sizeof w);
			continue;
		}
		if (secs_since(&start) > FILL_WAIT_SECS)
			return -ETIMEDOUT;
		nanosleep(&(struct timespec){ 0, FILL_POLL_MS * 1000000L }, NULL);
	}
}

/* Clone the entry into dst with the server-side copy only. */
static int
clone_entry(int cdfd, const char *hex, int dst, const struct stat *ist,
	struct copy_stats *stats)
{
	_cleanup_free_ struct fs_range *ext = NULL;
	_cleanup_close_ int src = -1;
	char raw[BC_NAME_MAX], extname[BC_NAME_MAX];
	uint64_t size;
	size_t n = 0;
	int r;

	r = bc_extents_read(cdfd, hex, &size, &ext, &n, NULL);
	if (r < 0)
		return r;
	if (size != (uint64_t)ist->st_size)
		return -EUCLEAN;
	bc_name(raw, sizeof raw, hex, ".raw");
	src = openat(cdfd, raw, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (src < 0)
		return negerrno();
	/* A reflink of the whole entry (SMB2 DUPLICATE_EXTENTS on kernel
	 * cifs), else COPYCHUNK / smbc_splice over its data extents. */
	r = fs_try_clone(src, dst);
	if (r > 0 && stats)
		*stats = (struct copy_stats){ .method = COPY_METHOD_CLONE,
			.bytes_cloned = size,
			.bytes_written = size };
	else if (r == 0)
		r = fs_copy_ranges(src, dst, ext, n, FS_COPY_OFFLOAD_ONLY, stats);
	if (r < 0)
		return r;
	if (ftruncate(dst, (off_t)size) < 0)
		return negerrno();
	/* last_used: the map's mtime. */
	bc_name(extname, sizeof extname, hex, ".extents");
	utimensat(cdfd, extname, NULL, AT_SYMLINK_NOFOLLOW);
	return 0;
}

static enum basecache_outcome
give_up(int dst, const char *backend_id, const char *hex, const char *what, int r,
	int *ret_err)
{
	/* The share itself in trouble: a copy through it would wait as long. */
	if (smb_conn_broken(r)) {
		log_warn("base cache: the share failed backend_id=%s sha256=%s: %s: %s",
			backend_id, hex ? hex : "-", what, strerror(-r));
		*ret_err = r;
		return BASECACHE_FAILED;
	}
	log_warn("base cache not used backend_id=%s sha256=%s: %s: %s; copying from the "
		 "image",
		backend_id, hex ? hex : "-", what, strerror(-r));
	if (ftruncate(dst, 0) < 0)
		log_warn("cannot empty a volume file for the copy: %s", strerror(errno));
	return BASECACHE_OFF;
}

/* Whether the share has room for a new entry and the volume cloned from
 * it: the image's data twice, and a margin. On a share too full for
 * both, a cache entry would make the create fail where a plain copy fits. */
#define ROOM_MARGIN (64ULL << 20)

static bool
room_for_entry(int vdfd, const struct stat *ist, const char *backend_id)
{
	unsigned long long data = (unsigned long long)ist->st_blocks * 512, avail;
	struct statvfs sv;

	if (fstatvfs(vdfd, &sv) < 0)
		return true; /* unknown: try, and fall back on ENOSPC */
	avail = (unsigned long long)sv.f_bavail * sv.f_frsize;
	if (avail >= 2 * data + ROOM_MARGIN)
		return true;
	log_info("base cache skipped backend_id=%s: %llu bytes free, a cache entry and "
		 "the volume need %llu; copying from the image",
		backend_id, avail, 2 * data + ROOM_MARGIN);
	return false;
}

/* The share filled up while cloning from an entry this create just made
 * and nothing else uses: remove it, so the copy from the image has the
 * room the entry took. */
static void
drop_fresh_entry(int cdfd, const char *backend_id, const char *hex)
{
	char raw[BC_NAME_MAX], ext[BC_NAME_MAX];

	if (bc_use_count(backend_id, hex) != 0)
		return;
	bc_name(raw, sizeof raw, hex, ".raw");
	bc_name(ext, sizeof ext, hex, ".extents");
	unlinkat(cdfd, ext, 0);
	unlinkat(cdfd, raw, 0);
	log_warn("base cache: the share is full; removed the entry just filled "
		 "sha256=%s backend_id=%s",
		hex, backend_id);
}

enum basecache_outcome
basecache_clone(struct agent *a, const char *backend_id, int vdfd, int img,
	const char *image, const struct stat *ist, int dst, struct copy_stats *stats,
	int *ret_err)
{
	char hex[IMAGE_HASH_HEX + 1];
	_cleanup_close_ int cdfd = -1;
	int r, filled;

	if (!a->cfg.base_cache || bc_refused(backend_id))
		return BASECACHE_OFF;
	r = image_hash(a, image, img, ist, hex);
	if (r < 0)
		return give_up(dst, backend_id, NULL, "hashing the image", r, ret_err);
	cdfd = fs_mkdir_beneath(vdfd, BASECACHE_DIR, 0700);
	if (cdfd < 0)
		return give_up(dst, backend_id, hex, "opening the cache directory", cdfd,
			ret_err);
	filled = ensure_entry(a, vdfd, backend_id, cdfd, hex, img, image, ist);
	if (filled < 0)
		return give_up(dst, backend_id, hex, "filling the cache entry", filled,
			ret_err);
	if (filled == ENTRY_NO_ROOM)
		return BASECACHE_SKIPPED;
	if (!bc_use_begin(backend_id, hex))
		return give_up(dst, backend_id, hex, "counting its use", -EBUSY, ret_err);
	debug_gate("cache_clone", NULL, NULL); /* tests: the share may hang here */
	r = clone_entry(cdfd, hex, dst, ist, stats);
	bc_use_end(backend_id, hex);
	if (r == -EOPNOTSUPP) {
		/* Logged once per backend; later creates skip the cache. */
		bc_mark_refused(backend_id);
		if (ftruncate(dst, 0) < 0)
			return give_up(dst, backend_id, hex, "emptying the volume",
				negerrno(), ret_err);
		return BASECACHE_REFUSED;
	}
	if ((r == -ENOSPC || r == -EDQUOT) && filled)
		drop_fresh_entry(cdfd, backend_id, hex);
	if (r < 0)
		return give_up(dst, backend_id, hex, "cloning from the cache", r, ret_err);
	return filled ? BASECACHE_FILLED : BASECACHE_HIT;
}
