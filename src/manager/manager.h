/* The manager process: shared state handed to every route handler as the
 * server's userdata and passed to every service. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdbool.h>

#include "manager/auth/auth.h"
#include "manager/auth/sealed.h"
#include "manager/backends/backend.h"
#include "manager/db/db.h"
#include "common/nq_error.h"
#include "common/http_server.h"
#include "manager/mgr_config.h"
#include "manager/auth/ratelimit.h"
#include "manager/services/registry.h"

struct manager {
	struct mgr_config cfg;
	struct db *db;
	struct registry *reg;
	struct backend_env env;
	struct sealed_key sealed; /* --secret-key-file */
	pthread_mutex_t rl_lock;
	struct ratelimit *rl_user, *rl_addr; /* failed logins, per key kind */
	char dummy_hash[AUTH_HASH_MAX];      /* verified for unknown users */
	sem_t hash_slots; /* concurrent argon2id computations (64 MiB each) */
	/* Status refresher. */
	pthread_t refresher;
	bool refresher_started;
	pthread_mutex_t refresh_lock;
	pthread_cond_t refresh_cond;
	bool stopping;
	bool refresh_now;
	/* Run-once lock held (runonce.c), the reconciler (reconciler.c), the
	 * HA loop (ha.c). */
	bool leader;
	struct reconciler *rec;
	pthread_t ha;
	bool ha_started;
	/* Recovery of interrupted operations (vms_recover.c). */
	pthread_t recoverer;
	bool recoverer_started;
};
