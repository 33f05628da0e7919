/* See ratelimit.h. */
#include "manager/auth/ratelimit.h"

#include <stdio.h>
#include <string.h>

void
ratelimit_init(struct ratelimit *rl, unsigned max_failures, time_t window, time_t lockout)
{
	memset(rl, 0, sizeof *rl);
	rl->max_failures = max_failures ? max_failures : 1;
	rl->window = window;
	rl->lockout = lockout;
}

static const struct rl_slot *
lookup(const struct ratelimit *rl, const char *key)
{
	for (size_t i = 0; i < RATELIMIT_SLOTS; i++)
		if (rl->slots[i].key[0] &&
			strncmp(rl->slots[i].key, key, RATELIMIT_KEY_MAX - 1) == 0)
			return &rl->slots[i];
	return NULL;
}

time_t
ratelimit_blocked(const struct ratelimit *rl, const char *key, time_t now)
{
	const struct rl_slot *s = lookup(rl, key);

	if (!s || s->locked_until <= now)
		return 0;
	return s->locked_until - now;
}

bool
ratelimit_fail(struct ratelimit *rl, const char *key, time_t now)
{
	struct rl_slot *s = (struct rl_slot *)lookup(rl, key);

	if (!s) {
		/* A free slot, else the least recently seen one. */
		s = &rl->slots[0];
		for (size_t i = 0; i < RATELIMIT_SLOTS; i++) {
			if (!rl->slots[i].key[0]) {
				s = &rl->slots[i];
				break;
			}
			if (rl->slots[i].last_seen < s->last_seen)
				s = &rl->slots[i];
		}
		memset(s, 0, sizeof *s);
		snprintf(s->key, sizeof s->key, "%s", key);
		s->window_start = now;
	}
	s->last_seen = now;
	if (now - s->window_start >= rl->window) {
		s->window_start = now;
		s->failures = 0;
	}
	s->failures++;
	if (s->failures >= rl->max_failures) {
		s->locked_until = now + rl->lockout;
		s->failures = 0;
		s->window_start = now;
		return true;
	}
	return false;
}

void
ratelimit_reset(struct ratelimit *rl, const char *key)
{
	struct rl_slot *s = (struct rl_slot *)lookup(rl, key);

	if (s)
		memset(s, 0, sizeof *s);
}
