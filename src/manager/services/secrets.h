/* The `secrets` table: sealed values (auth/sealed.h) by record id,
 * "host:<id>" for an agent token, "backend:<id>" for a share password.
 * generation counts the values a record has held (rotation). */
#pragma once

#include "common/secret.h"

struct manager;

/* Store s sealed under id (insert, or replace and bump the generation);
 * *ret_gen (may be NULL) gets the new generation. */
int secrets_put(struct manager *m, const char *id, const struct secret *s, int *ret_gen);
/* Open the value of id: -ENOENT when there is none, -EBADMSG when it does
 * not open (another key). *ret_gen may be NULL. */
int secrets_get(struct manager *m, const char *id, struct secret **ret, int *ret_gen);
int secrets_delete(struct manager *m, const char *id);
/* "host:<id>" / "backend:<id>" into buf. */
void secrets_id(char *buf, size_t sz, const char *kind, const char *id);
