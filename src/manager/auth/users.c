/* See users.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "manager/auth/sessions.h"
#include "manager/auth/users.h"
#include "manager/manager.h"

static int
check_username(const char *s, struct nq_error *err)
{
	size_t n = strlen(s);

	if (n == 0 || n > USERNAME_MAX || !isalnum((unsigned char)s[0]))
		goto bad;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			goto bad;
	return 0;
bad:
	return nq_error_setr(err, -EINVAL, "invalid_field", "username",
		"username must be 1 to %d of A-Z a-z 0-9 . _ -, starting with a letter"
		" or digit",
		USERNAME_MAX);
}

static int
check_new(const struct user_new *u, struct nq_error *err)
{
	size_t pwlen = strlen(u->password);

	if (check_username(u->username, err) < 0)
		return -EINVAL;
	if (pwlen < USER_PASSWORD_MIN || pwlen > AUTH_PASSWORD_MAX)
		return nq_error_setr(err, -EINVAL, "invalid_field", "password",
			"password must be %d to %d bytes long", USER_PASSWORD_MIN,
			AUTH_PASSWORD_MAX);
	if (strcmp(u->role, "admin") != 0 && strcmp(u->role, "viewer") != 0)
		return nq_error_setr(err, -EINVAL, "invalid_field", "role",
			"role must be admin or viewer");
	return 0;
}

static json_t *
user_json(const struct db_rows *rows, unsigned i)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:I}", "id", db_rows_get(rows, i, 0) ?: "",
		"username", db_rows_get(rows, i, 1) ?: "", "role",
		db_rows_get(rows, i, 2) ?: "viewer", "builtin",
		strcmp(db_rows_get(rows, i, 3) ?: "0", "1") == 0, "created_at",
		(json_int_t)strtoll(db_rows_get(rows, i, 4) ?: "0", NULL, 10));
}

#define USER_COLS "id, username, role, builtin, created_at"

int
users_create(struct manager *m, const struct user_new *in, json_t **ret,
	struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	struct user_new u = *in;
	char hash[AUTH_HASH_MAX], id[AUTH_UUID_LEN + 1], now[24];
	int r;

	if (!u.role)
		u.role = "viewer";
	if (check_new(&u, err) < 0)
		return -EINVAL;
	sem_wait(&m->hash_slots);
	r = auth_hash_password(u.password, strlen(u.password), hash);
	sem_post(&m->hash_slots);
	if (r < 0)
		return nq_error_setr(err, r, "internal_error", NULL,
			"cannot hash the password");
	auth_new_uuid(id);
	snprintf(now, sizeof now, "%lld", (long long)time(NULL));
	const char *p[] = { id, u.username, hash, now, u.role };
	r = db_exec(m->db,
		"INSERT INTO users (id, username, password_hash, created_at, role,"
		" builtin) VALUES ($1, $2, $3, $4, $5, 0)",
		5, p, NULL);
	explicit_bzero(hash, sizeof hash);
	if (r == -EEXIST)
		return nq_error_setr(err, r, "name_taken", "username",
			"a user named %s exists already", u.username);
	if (r < 0 ||
		db_query(m->db, "SELECT " USER_COLS " FROM users WHERE id = $1", 1,
			(const char *[]){ id }, &rows) < 0 ||
		rows.nrows != 1)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	log_info("user created username=%s role=%s", u.username, u.role);
	*ret = user_json(&rows, 0);
	return 0;
}

json_t *
users_list_json(struct manager *m)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	json_t *arr;

	if (db_query(m->db, "SELECT " USER_COLS " FROM users ORDER BY username", 0, NULL,
		    &rows) < 0)
		return NULL;
	arr = json_array();
	for (unsigned i = 0; arr && i < rows.nrows; i++)
		json_array_append_new(arr, user_json(&rows, i));
	return arr;
}

int
users_delete(struct manager *m, const char *ref, struct nq_error *err)
{
	_cleanup_(db_rows_release) struct db_rows rows = { 0 };
	const char *id;

	if (db_query(m->db, "SELECT " USER_COLS " FROM users WHERE id = $1 OR username = $1",
		    1, (const char *[]){ ref }, &rows) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	if (rows.nrows == 0)
		return nq_error_setr(err, -ENOENT, "not_found", NULL,
			"no user with id or name %s", ref);
	if (strcmp(db_rows_get(&rows, 0, 3) ?: "0", "1") == 0)
		return nq_error_setr(err, -EPERM, "user_builtin", NULL,
			"%s is the first administrator: it cannot be removed",
			db_rows_get(&rows, 0, 1) ?: "");
	id = db_rows_get(&rows, 0, 0);
	const struct db_stmt s[] = {
		{ "DELETE FROM api_tokens WHERE user_id = $1", 1, (const char *[]){ id } },
		{ "DELETE FROM users WHERE id = $1", 1, (const char *[]){ id } },
	};
	if (db_exec_tx(m->db, s, ARRAY_SIZE(s)) < 0)
		return nq_error_setr(err, -EIO, "internal_error", NULL, "database error");
	log_info("user removed username=%s", db_rows_get(&rows, 0, 1) ?: "");
	return 0;
}
