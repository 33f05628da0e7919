/* Failed-login limiter: per key (a username, a client address), at most
 * max_failures within window seconds; reaching it locks the key for
 * lockout seconds. A fixed-size table (oldest entry evicted), so an
 * attacker cycling keys cannot grow memory. Time is passed in, so the
 * module is pure and testable; callers lock around it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define RATELIMIT_SLOTS 1024
#define RATELIMIT_KEY_MAX 128

struct rl_slot {
	char key[RATELIMIT_KEY_MAX];
	unsigned failures;
	time_t window_start, locked_until, last_seen;
};

struct ratelimit {
	unsigned max_failures;
	time_t window, lockout;
	struct rl_slot slots[RATELIMIT_SLOTS];
};

void ratelimit_init(struct ratelimit *rl, unsigned max_failures, time_t window,
	time_t lockout);
/* Seconds until key may try again; 0 when it may try now. */
time_t ratelimit_blocked(const struct ratelimit *rl, const char *key, time_t now);
/* Record a failure; returns true when this failure locked the key. */
bool ratelimit_fail(struct ratelimit *rl, const char *key, time_t now);
/* Forget the key (after a successful login). */
void ratelimit_reset(struct ratelimit *rl, const char *key);
