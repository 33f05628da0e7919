/* Per-object claims (issue 10): an operation claims what it touches — a
 * backend ("backend:<id>") or a VM ("vm:<id>") — for as long as it works
 * on it, including its agent calls. A second operation on a claimed
 * object is refused with 409 "busy" at once (claim_try) or waits for it
 * (claim_wait); operations on other objects never wait. No lock is held
 * across network or disk I/O: the table's mutex guards only the table.
 *
 * A claim can be marked cancelled (deleting a VM that is being
 * provisioned): its holder polls claim_cancelled between steps. */
#pragma once

#include <stdbool.h>

#include "common/nq_error.h"

#define CLAIM_KEY_MAX 96

/* How long an operation waits for background upkeep (the refresher
 * re-attaching a backend, HA restarting a VM) that holds its object. */
#define CLAIM_BACKGROUND_WAIT_MS 60000

/* 0, or -EBUSY with err "busy" naming what when another operation holds
 * the object; a background claim is waited for, bounded as above. */
int claim_try(const char *key, const char *what, struct nq_error *err);
/* Wait up to timeout_ms for the claim; -EBUSY with err "busy" on timeout. */
int claim_wait(const char *key, long timeout_ms, const char *what, struct nq_error *err);
/* Background upkeep: take key only when it is free; operations that then
 * ask for it wait instead of failing. */
bool claim_try_background(const char *key);
void claim_release(const char *key);
/* Whether an operation holds key now, without taking it (background work
 * that must never make an operation fail with busy). */
bool claim_held(const char *key);
/* Ask the holder of key to stop; false when nobody holds it. */
bool claim_cancel(const char *key);
bool claim_cancelled(const char *key);
/* Build "<kind>:<id>" into buf (CLAIM_KEY_MAX bytes). */
void claim_key(char *buf, const char *kind, const char *id);
