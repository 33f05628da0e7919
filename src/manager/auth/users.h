/* User accounts and their roles (the service behind routes_users.c).
 * Roles: "admin" may do everything; "viewer" may read but not change
 * anything (enforced once, in mgr_auth_hook). The first administrator
 * (auth_bootstrap) is builtin: it can be neither removed nor demoted. */
#pragma once

#include <jansson.h>

#include "common/nq_error.h"

struct manager;

#define USERNAME_MAX 64
#define USER_PASSWORD_MIN 8

struct user_new {
	const char *username; /* 1..64 of [A-Za-z0-9._-], alphanumeric first */
	const char *password; /* 8..AUTH_PASSWORD_MAX bytes; only its hash is kept */
	const char *role;     /* "admin" or "viewer"; NULL: viewer */
};

/* Create a user; *ret (owned) is its JSON. -EINVAL / -EEXIST with err. */
int users_create(struct manager *m, const struct user_new *u, json_t **ret,
	struct nq_error *err);
/* [{id, username, role, builtin, created_at}] ordered by name; NULL on a
 * database error. */
json_t *users_list_json(struct manager *m);
/* Remove the user whose id or name is ref, and its sessions: -ENOENT
 * (not_found), -EPERM (user_builtin) with err. */
int users_delete(struct manager *m, const char *ref, struct nq_error *err);
