/* Leases: never two writers on one volume. A VM on a shared storage kind
 * (kind.h: smb) holds .<prefix>-<volume_id>.lease in its volume directory
 * while its VMM runs; its agent renews it every max(1, lease_seconds / 5)
 * s and kills the VMM itself (self-fencing) when it could not renew for
 * lease_seconds - 2 renew intervals, that is before the lease expires.
 * Another agent refuses to start the VM while the lease is unexpired
 * (409 volume_leased). docs/leases.md has the format, the timing, the
 * takeover protocol and its residual risks.
 *
 * Three layers: the pure lease record (parse, format, decide: unit-tested,
 * leases_fmt.c), the file protocol on a volume directory (leases_io.c) and
 * the agent's registry of held leases with its renewal and fencer threads
 * (leases.c). No lock is held across share I/O: every lease file access
 * runs through the bounded deadline pool (mounts/deadline.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "common/nq_error.h"
#include "common/validate.h"
#include "agent/agent.h"
#include "agent/storage/kind.h"

struct vmm_proc;

#define LEASE_FILE_MAX 4096 /* a lease is ~300 bytes; bigger is corrupt */
#define LEASE_HOST_MAX 255

struct lease {
	char agent_id[NQ_UUID_LEN + 1];
	char host_name[LEASE_HOST_MAX + 1];
	char vm_id[NQ_UUID_LEN + 1];
	char volume_id[NQ_UUID_LEN + 1];
	long long expires_at_ms; /* wall clock, ms since the epoch */
	long long renewed_at_ms;
	long long generation; /* +1 on every write */
};

/* What a read of the lease file found. */
struct lease_view {
	bool present;       /* the file exists */
	bool valid;         /* it parsed into l */
	struct lease l;     /* when valid */
	long long mtime_ms; /* when present: its last write (server clock) */
	char why[160];      /* when present and not valid: what is wrong */
};

enum lease_verdict {
	LEASE_FREE,    /* no lease file: create ours (O_EXCL) */
	LEASE_OURS,    /* this agent's: write ours over it */
	LEASE_EXPIRED, /* another agent's (or corrupt), expired: take over */
	LEASE_HELD,    /* another agent's, unexpired: 409 volume_leased */
};

struct lease_decision {
	enum lease_verdict v;
	long long held_until_ms; /* HELD / EXPIRED: the effective expiry */
	bool corrupt;            /* unreadable, or an absurd expiry */
};

/* Strict parse of a lease file's bytes: an object with exactly the
 * lease's keys (unknown keys are ignored: a newer agent may add some),
 * UUIDs, a printable host name, non-negative integers. -EINVAL with a
 * sentence in why (whysz bytes) naming the bad field. */
int lease_parse(const char *buf, size_t len, struct lease *ret, char *why, size_t whysz);
/* The file's bytes (JSON, newline-terminated) into buf; the length, or
 * -ENOSPC. */
int lease_format(const struct lease *l, char *buf, size_t bufsz);
/* The rule (docs/leases.md): no file → FREE; our agent_id → OURS; a
 * corrupt file is held until its mtime + lease_seconds; an expiry beyond
 * now + 10 × lease_seconds is corrupt and held until mtime + 10 ×
 * lease_seconds; else held until expires_at_ms. volume_id: the lease must
 * name it, or it is corrupt. */
void lease_decide(const struct lease_view *cur, const char *agent_id, const char *volume_id,
	long long now_ms, unsigned lease_seconds, struct lease_decision *ret);
/* Wall clock and monotonic clock in ms. */
long long lease_now_ms(void);
long long lease_mono_ms(void);
/* The renew interval for lease_seconds: max(1, lease_seconds / 5) s. */
unsigned lease_interval_ms(unsigned lease_seconds);
/* How often the agent renews: the interval, or half of it when the fencing
 * margin L - 2 × interval is under 3 intervals (lease_seconds 3 or 4), so
 * that one renewal slower than usual does not fence. */
unsigned lease_period_ms(unsigned lease_seconds);
/* The io_deadline= the agent gives the FUSE bridge of a shared backend
 * (docs/leases.md, "Late writes"): 2 × interval - 1 s, at least 1. The
 * fencer kills the VMM 2 intervals before the lease expires; a request
 * the VMM issued until then lives at most this long in the bridge and
 * the kernel, so none of it reaches the share after the expiry. */
unsigned lease_io_deadline_s(unsigned lease_seconds);

/* ---- the file protocol on one volume directory (leases_io.c) ---- */

/* One lease operation, run in a deadline worker (no pointers: the worker
 * gets a copy). */
struct lease_op {
	char dir[4096];    /* the volume directory */
	char name[96];     /* .smb-<volume_id>.lease */
	char tmp[160];     /* <name>.<agent_id>.tmp */
	struct lease mine; /* what to write (generation set by the op) */
	unsigned lease_seconds;
	bool adopted;   /* renew: the first since an agent restart */
	bool reclaimed; /* renew: replaced another agent's expired lease */
	bool in_place;  /* renew: the share was full, rewritten in place */
	/* out */
	struct lease_view seen;  /* what the op found */
	struct lease_decision d; /* acquire: the decision it acted on */
	long long written_gen;   /* the generation it wrote */
	long long t0_mono_ms;    /* the expiry it wrote counts from here */
};

/* Acquire: 0 (ours now), LEASE_ACQ_HELD (another agent's: op->d,
 * op->seen), LEASE_ACQ_RACE (lost a race with another agent: try again),
 * or -errno. */
#define LEASE_ACQ_HELD 1
#define LEASE_ACQ_RACE 2
int lease_op_acquire(void *op);
/* Renew: 0, -ESTALE (the lease is not ours any more, or it is gone, or,
 * adopted, it expired), other -errno. Another agent's lease that has
 * expired is replaced by ours (op->reclaimed): only a late write of a
 * host that fenced itself can put it there while we renew in time. */
int lease_op_renew(void *op);
/* Release: delete the lease when it is still ours. 0 or -errno. */
int lease_op_release(void *op);

/* ---- the agent's registry (leases.c) ---- */

struct leases;

/* Load (or create, once) the agent's id from <state_dir>/agent-id. */
int leases_new(struct agent *a, struct leases **ret);
void leases_free(struct leases *ls);
/* The renewal and the fencer threads; stop joins them. */
int leases_start(struct agent *a);
void leases_stop(struct agent *a);
const char *leases_agent_id(const struct leases *ls);

/* Before a VMM starts on rootfs (a path the agent built in the volume
 * directory): take the lease of volume_id for vm_id. A no-op (0) for a
 * kind that is not shared. 409 volume_leased when another agent holds
 * it. The share I/O runs under a deadline; no lock is held across it. */
int leases_acquire(struct agent *a, const struct storage_kind_ops *k, const char *vm_id,
	const char *volume_id, const char *rootfs, struct nq_error *err);
/* The VMM now runs as p: the fencer kills p when renewals fail. */
void leases_set_proc(struct agent *a, const char *vm_id, const struct vmm_proc *p);
/* A restarted agent found vm_id's VMM p running: renew its lease again
 * (and fence at once when it was lost meanwhile). */
void leases_adopt(struct agent *a, const struct storage_kind_ops *k, const char *vm_id,
	const char *volume_id, const char *rootfs, const struct vmm_proc *p);
/* The VMM stopped (stop, guest exit, delete, failed start): delete the
 * lease file if it is still ours. A fenced lease is left to expire. */
void leases_release(struct agent *a, const char *vm_id);
/* Whether vm_id was fenced and not yet recorded (leases_forget). */
bool leases_fenced(struct agent *a, const char *vm_id);
void leases_forget(struct agent *a, const char *vm_id);
/* "held" (*ret_expires set), "lost" (fenced) or "none". */
const char *leases_state(struct agent *a, const char *vm_id, long long *ret_expires);
