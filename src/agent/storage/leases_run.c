/* The lease registry's life: the agent's identity, the renewal thread and
 * the fencer thread (leases.h, leases.c). */
#include "agent/storage/leases.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/macro.h"
#include "agent/mounts/deadline.h"
#include "agent/storage/leases_internal.h"

#define FENCER_TICK_MS 100
#define ID_FILE "agent-id"

/* A random (version 4) UUID. */
static int
new_uuid(char out[NQ_UUID_LEN + 1])
{
	unsigned char b[16];

	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, NQ_UUID_LEN + 1,
		"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		b[12], b[13], b[14], b[15]);
	return 0;
}

/* <state_dir>/agent-id: a UUID generated on first start, kept after. */
static int
load_identity(int dirfd, char out[NQ_UUID_LEN + 1])
{
	char buf[NQ_UUID_LEN + 8] = "", id[NQ_UUID_LEN + 1];
	_cleanup_close_ int fd = openat(dirfd, ID_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n;
	int r;

	if (fd >= 0) {
		n = read(fd, buf, sizeof buf - 1);
		buf[n > 0 ? n : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (validate_uuid("agent_id", buf, out, NULL) < 0)
			return -EINVAL;
		return 0;
	}
	if (errno != ENOENT)
		return negerrno();
	if ((r = new_uuid(id)) < 0)
		return r;
	snprintf(buf, sizeof buf, "%s\n", id);
	fd = openat(dirfd, ID_FILE ".tmp",
		O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return negerrno();
	if (write(fd, buf, strlen(buf)) != (ssize_t)strlen(buf) || fsync(fd) < 0 ||
		renameat(dirfd, ID_FILE ".tmp", dirfd, ID_FILE) < 0)
		return errno ? negerrno() : -EIO;
	memcpy(out, id, sizeof id);
	return 0;
}

int
leases_new(struct agent *a, struct leases **ret)
{
	struct leases *ls = calloc(1, sizeof *ls);
	pthread_condattr_t ca;
	int r;

	if (!ls)
		return -ENOMEM;
	if ((r = load_identity(a->state_dirfd, ls->agent_id)) < 0) {
		free(ls);
		return r;
	}
	if (a->cfg.host_name && *a->cfg.host_name)
		snprintf(ls->host_name, sizeof ls->host_name, "%s", a->cfg.host_name);
	else if (gethostname(ls->host_name, sizeof ls->host_name - 1) < 0 ||
		 !ls->host_name[0])
		snprintf(ls->host_name, sizeof ls->host_name, "unknown");
	ls->lease_seconds = a->cfg.lease_seconds;
	ls->interval_ms = lease_interval_ms(ls->lease_seconds);
	pthread_mutex_init(&ls->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ls->wake, &ca);
	pthread_condattr_destroy(&ca);
	*ret = ls;
	return 0;
}

void
leases_free(struct leases *ls)
{
	if (!ls)
		return;
	pthread_cond_destroy(&ls->wake);
	pthread_mutex_destroy(&ls->lock);
	free(ls);
}

/* Under ls->lock: sleep ms unless stopping; false when stopping. */
static bool
nap(struct leases *ls, long long ms)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)(ms / 1000);
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	if (!ls->stopping)
		pthread_cond_timedwait(&ls->wake, &ls->lock, &until);
	return !ls->stopping;
}

static void
renewed(struct leases *ls, const struct lease_op *op, unsigned long epoch, int r)
{
	struct lease_entry *e = NULL;

	for (size_t i = 0; i < VM_MAX && !e; i++)
		if (ls->e[i].used && ls->e[i].epoch == epoch)
			e = &ls->e[i];
	if (!e || e->fenced)
		return;
	if (r == 0) {
		e->last_ok_mono = op->t0_mono_ms;
		e->expires_ms = op->mine.expires_at_ms;
		e->adopted = false;
		log_debug("lease renewed vm_id=%s generation=%lld", e->vm_id,
			op->written_gen);
	} else if (r == -ESTALE) {
		log_warn("lease lost vm_id=%s volume_id=%s: %s", e->vm_id, e->volume_id,
			!op->seen.present ? "the lease file is gone"
			: e->adopted      ? "it expired while the agent was down"
					  : "another host holds it now");
		e->lost = true;
		pthread_cond_broadcast(&ls->wake);
	} else {
		log_warn("cannot renew the lease vm_id=%s volume_id=%s err=%s", e->vm_id,
			e->volume_id, strerror(-r));
	}
}

static void *
renewer(void *arg)
{
	struct agent *a = arg;
	struct leases *ls = a->leases;
	struct lease_op op;

	pthread_mutex_lock(&ls->lock);
	do {
		for (size_t i = 0; i < VM_MAX && !ls->stopping; i++) {
			struct lease_entry *e = &ls->e[i];
			unsigned long epoch = e->epoch;
			int r;

			if (!e->used || e->fenced || e->lost)
				continue;
			lease_op_init(ls, e, &op);
			pthread_mutex_unlock(&ls->lock);
			r = deadline_run(op.dir, lease_op_renew, &op, sizeof op,
				(int)ls->interval_ms);
			pthread_mutex_lock(&ls->lock);
			renewed(ls, &op, epoch, r);
		}
	} while (nap(ls, ls->interval_ms));
	pthread_mutex_unlock(&ls->lock);
	return NULL;
}

/* Under ls->lock: the leases whose VMM must die now, marked fenced. */
static size_t
due(struct leases *ls, char (*ids)[NQ_UUID_LEN + 1], struct vmm_proc *procs)
{
	long long now = lease_mono_ms(), i2 = 2LL * ls->interval_ms;
	long long L = (long long)ls->lease_seconds * 1000;
	size_t n = 0;

	for (size_t i = 0; i < VM_MAX; i++) {
		struct lease_entry *e = &ls->e[i];
		long long at = e->last_ok_mono + L - i2;

		if (!e->used || e->fenced || e->proc.pid <= 0)
			continue;
		if (e->adopted)
			at = e->adopted_mono + (i2 < L - i2 ? i2 : L - i2);
		if (!e->lost && now < at)
			continue;
		e->fenced = true;
		memcpy(ids[n], e->vm_id, sizeof ids[n]);
		procs[n++] = e->proc;
	}
	return n;
}

static void *
fencer(void *arg)
{
	struct agent *a = arg;
	struct leases *ls = a->leases;
	static char ids[VM_MAX][NQ_UUID_LEN + 1];
	static struct vmm_proc procs[VM_MAX];

	pthread_mutex_lock(&ls->lock);
	do {
		size_t n = due(ls, ids, procs);

		if (!n)
			continue;
		pthread_mutex_unlock(&ls->lock);
		/* Kill first, all of them; record after. */
		for (size_t i = 0; i < n; i++) {
			if (vmm_proc_alive(&procs[i]))
				kill(procs[i].pid, SIGKILL);
			log_warn("VM fenced: its lease could not be renewed, VMM killed "
				 "id=%s pid=%d",
				ids[i], (int)procs[i].pid);
		}
		for (size_t i = 0; i < n; i++)
			vms_mark_fenced(a, ids[i]);
		pthread_mutex_lock(&ls->lock);
	} while (nap(ls, FENCER_TICK_MS));
	pthread_mutex_unlock(&ls->lock);
	return NULL;
}

int
leases_start(struct agent *a)
{
	struct leases *ls = a->leases;
	int r;

	ls->stopping = false;
	if ((r = pthread_create(&ls->fencer, NULL, fencer, a)) != 0)
		return -r;
	if ((r = pthread_create(&ls->renewer, NULL, renewer, a)) != 0) {
		pthread_mutex_lock(&ls->lock);
		ls->stopping = true;
		pthread_cond_broadcast(&ls->wake);
		pthread_mutex_unlock(&ls->lock);
		pthread_join(ls->fencer, NULL);
		return -r;
	}
	ls->started = true;
	log_info("leases agent_id=%s host_name=%s lease_seconds=%u renew_ms=%u",
		ls->agent_id, ls->host_name, ls->lease_seconds, ls->interval_ms);
	return 0;
}

void
leases_stop(struct agent *a)
{
	struct leases *ls = a->leases;

	if (!ls || !ls->started)
		return;
	pthread_mutex_lock(&ls->lock);
	ls->stopping = true;
	pthread_cond_broadcast(&ls->wake);
	pthread_mutex_unlock(&ls->lock);
	pthread_join(ls->fencer, NULL);
	pthread_join(ls->renewer, NULL);
	ls->started = false;
}
