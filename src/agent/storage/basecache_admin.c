/* The base cache's bookkeeping: extent-map files, who clones from what on
 * this host, backends that refused a server-side copy, and the list and
 * purge behind GET/DELETE .../cache. See basecache.h. */
#include "agent/storage/basecache_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "common/validate.h"
#include "agent/storage/imagehash.h"

#define EXTENTS_CAP (16 * 1024 * 1024)
#define USE_SLOTS 64
#define REFUSED_SLOTS 64

static pthread_mutex_t bc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char backend[NQ_UUID_LEN + 1];
	char hex[IMAGE_HASH_HEX + 1];
	unsigned n;
} uses[USE_SLOTS];
/* A refusal is remembered for REFUSED_RETRY_S (the NAS may be upgraded or
 * its share moved to a file system that copies), or until the backend's
 * cache is purged: then server-side copies are tried again. */
#define REFUSED_RETRY_S 3600
static struct {
	char backend[NQ_UUID_LEN + 1];
	time_t since; /* CLOCK_MONOTONIC seconds */
} refused[REFUSED_SLOTS];

static time_t
mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

bool
bc_use_begin(const char *backend_id, const char *hex)
{
	int free_slot = -1;
	bool ok = false;

	pthread_mutex_lock(&bc_lock);
	for (int i = 0; i < USE_SLOTS; i++) {
		if (uses[i].n && !strcmp(uses[i].backend, backend_id) &&
			!strcmp(uses[i].hex, hex)) {
			uses[i].n++;
			ok = true;
			break;
		}
		if (!uses[i].n && free_slot < 0)
			free_slot = i;
	}
	if (!ok && free_slot >= 0) {
		snprintf(uses[free_slot].backend, sizeof uses[free_slot].backend, "%s",
			backend_id);
		snprintf(uses[free_slot].hex, sizeof uses[free_slot].hex, "%s", hex);
		uses[free_slot].n = 1;
		ok = true;
	}
	pthread_mutex_unlock(&bc_lock);
	return ok;
}

void
bc_use_end(const char *backend_id, const char *hex)
{
	pthread_mutex_lock(&bc_lock);
	for (int i = 0; i < USE_SLOTS; i++)
		if (uses[i].n && !strcmp(uses[i].backend, backend_id) &&
			!strcmp(uses[i].hex, hex)) {
			uses[i].n--;
			break;
		}
	pthread_mutex_unlock(&bc_lock);
}

unsigned
bc_use_count(const char *backend_id, const char *hex)
{
	unsigned n = 0;

	pthread_mutex_lock(&bc_lock);
	for (int i = 0; i < USE_SLOTS; i++)
		if (uses[i].n && !strcmp(uses[i].backend, backend_id) &&
			!strcmp(uses[i].hex, hex))
			n = uses[i].n;
	pthread_mutex_unlock(&bc_lock);
	return n;
}

/* Under bc_lock: the slot of backend_id's refusal, or -1; an expired one
 * is dropped (and logged) on the way. */
static int
refused_slot_locked(const char *backend_id, time_t now)
{
	for (int i = 0; i < REFUSED_SLOTS; i++) {
		if (!refused[i].backend[0] || strcmp(refused[i].backend, backend_id))
			continue;
		if (now - refused[i].since < REFUSED_RETRY_S)
			return i;
		refused[i].backend[0] = '\0';
		log_info("base cache: trying server-side copies again backend_id=%s "
			 "(the refusal was %d s ago)",
			backend_id, REFUSED_RETRY_S);
	}
	return -1;
}

bool
bc_refused(const char *backend_id)
{
	bool r;

	pthread_mutex_lock(&bc_lock);
	r = refused_slot_locked(backend_id, mono_s()) >= 0;
	pthread_mutex_unlock(&bc_lock);
	return r;
}

void
bc_mark_refused(const char *backend_id)
{
	time_t now = mono_s();
	bool added = false;

	pthread_mutex_lock(&bc_lock);
	if (refused_slot_locked(backend_id, now) < 0)
		for (int i = 0; i < REFUSED_SLOTS && !added; i++)
			if (!refused[i].backend[0]) {
				snprintf(refused[i].backend, sizeof refused[i].backend,
					"%s", backend_id);
				refused[i].since = now;
				added = true;
			}
	pthread_mutex_unlock(&bc_lock);
	if (added)
		log_warn("base cache: the server refused a server-side copy backend_id=%s; "
			 "volumes on this backend are copied through this host for the next "
			 "%d s or until its cache is purged (client copy)",
			backend_id, REFUSED_RETRY_S);
}

void
bc_forget_refused(const char *backend_id)
{
	pthread_mutex_lock(&bc_lock);
	for (int i = 0; i < REFUSED_SLOTS; i++)
		if (!strcmp(refused[i].backend, backend_id))
			refused[i].backend[0] = '\0';
	pthread_mutex_unlock(&bc_lock);
}

int
bc_extents_write(int cdfd, const char *hex, const char *image, uint64_t size,
	const struct fs_range *ext, size_t n)
{
	_cleanup_free_ char *buf = NULL;
	size_t cap = 128 + n * 44, len;
	char name[BC_NAME_MAX];
	int w;

	buf = malloc(cap);
	if (!buf)
		return -ENOMEM;
	w = snprintf(buf, cap, "nqrust-extents 1\nsize %" PRIu64 "\nimage %s\n", size,
		image);
	len = (size_t)w;
	for (size_t i = 0; i < n; i++) {
		w = snprintf(buf + len, cap - len, "%" PRIu64 " %" PRIu64 "\n", ext[i].off,
			ext[i].len);
		if (w < 0 || (size_t)w >= cap - len)
			return -EOVERFLOW;
		len += (size_t)w;
	}
	if (len > EXTENTS_CAP)
		return -EFBIG;
	bc_name(name, sizeof name, hex, ".extents");
	return fs_write_atomic(cdfd, name, buf, len, 0600);
}

static int
parse_u64(const char *s, char **end, uint64_t *ret)
{
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, end, 10);
	if (errno)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int
parse_header(char **p, uint64_t *ret_size, char *image)
{
	char *s = *p, *e, *nl;

	if (strncmp(s, "nqrust-extents 1\nsize ", 22) != 0)
		return -EUCLEAN;
	if (parse_u64(s + 22, &e, ret_size) < 0 || strncmp(e, "\nimage ", 7) != 0)
		return -EUCLEAN;
	s = e + 7;
	nl = strchr(s, '\n');
	if (!nl || nl - s > 128)
		return -EUCLEAN;
	if (image)
		snprintf(image, 129, "%.*s", (int)(nl - s), s);
	*p = nl + 1;
	return 0;
}

int
bc_extents_read(int cdfd, const char *hex, uint64_t *ret_size, struct fs_range **ret_ext,
	size_t *ret_n, char *image)
{
	_cleanup_free_ struct fs_range *v = NULL;
	_cleanup_free_ char *buf = NULL;
	char name[BC_NAME_MAX], *p, *e;
	size_t len, n = 0, cap;
	uint64_t size, end = 0;
	int r;

	bc_name(name, sizeof name, hex, ".extents");
	r = fs_read_file(cdfd, name, EXTENTS_CAP, &buf, &len);
	if (r < 0)
		return r;
	p = buf;
	if (parse_header(&p, &size, image) < 0)
		return -EUCLEAN;
	cap = len / 4 + 1;
	v = calloc(cap, sizeof *v);
	if (!v)
		return -ENOMEM;
	while (*p) {
		struct fs_range x;

		if (n == cap || parse_u64(p, &e, &x.off) < 0 || *e != ' ' ||
			parse_u64(e + 1, &e, &x.len) < 0 || *e != '\n' || x.off < end ||
			x.len > size || x.off > size - x.len)
			return -EUCLEAN;
		end = x.off + x.len;
		v[n++] = x;
		p = e + 1;
	}
	*ret_size = size;
	*ret_n = n;
	*ret_ext = TAKE_PTR(v);
	return 0;
}
