/* Private to storage/leases*.c: the registry of held leases. */
#pragma once

#include <pthread.h>

#include "agent/storage/leases.h"
#include "agent/vmm/vms.h"

struct lease_entry {
	bool used;
	bool adopted;  /* found running at agent start, not renewed yet */
	bool lost;     /* a renewal found it is not ours any more */
	bool fenced;   /* its VMM was killed; kept until the VM records it */
	bool in_place; /* its last renewal was in place (a full share) */
	char vm_id[NQ_UUID_LEN + 1];
	char volume_id[NQ_UUID_LEN + 1];
	char dir[4096]; /* the volume directory */
	char name[96];  /* the lease file's name in dir */
	struct vmm_proc proc;
	long long expires_ms;   /* wall clock, as last written */
	long long last_ok_mono; /* the last write's expiry counts from here */
	long long adopted_mono; /* when adopted */
	unsigned long epoch;    /* tells a re-acquired entry from the old */
};

struct leases {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* CLOCK_MONOTONIC; stop and lost leases */
	struct lease_entry e[VM_MAX];
	char agent_id[NQ_UUID_LEN + 1];
	char host_name[LEASE_HOST_MAX + 1];
	unsigned lease_seconds, interval_ms;
	unsigned period_ms; /* how often the renewal thread starts a round */
	unsigned long epoch;
	bool started, stopping;
	pthread_t renewer, fencer;
};

/* Under ls->lock: an op on e's lease file. */
void lease_op_init(const struct leases *ls, const struct lease_entry *e,
	struct lease_op *op);
