/* nqrust login and nqrust user …: sessions and user accounts (roles
 * admin | viewer; /v1/users is for administrators). Passwords come from a
 * no-echo prompt or --password-stdin, never from argv. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int
cli_cmd_login(struct cli *c, const char *username, bool password_stdin)
{
	json_t *reply = NULL;
	char *pw = NULL;
	int status, rc = 1;

	if (!username) {
		cli_errf("usage", "username", "login needs --username");
		return 2;
	}
	if (cli_read_password(password_stdin, "Password: ", &pw) < 0)
		return 1;
	json_t *body = json_pack("{s:s, s:s}", "username", username, "password", pw);
	cli_free_secret(pw);
	free(c->token);
	c->token = NULL;
	status = cli_request(c, "POST", "/v1/auth/login", body, &reply);
	json_decref(body);
	if (status >= 0 && status != 200)
		rc = cli_print_error(status, reply);
	if (status == 200) {
		const char *tok = json_string_value(json_object_get(reply, "token"));
		const char *role = json_string_value(json_object_get(reply, "role"));
		int r = tok ? cli_save_token(tok) : -EPROTO;
		if (r < 0) {
			cli_errf("io_error", NULL, "cannot save the token: %s",
				strerror(-r));
		} else if (c->json) {
			json_t *j = json_pack("{s:b, s:s, s:s}", "logged_in", 1,
				"username", username, "role", role ? role : "");
			cli_print_json(j);
			json_decref(j);
			rc = 0;
		} else {
			printf("Logged in as %s%s%s.\n", username, role ? ", role " : "",
				role ? role : "");
			rc = 0;
		}
	}
	json_decref(reply);
	return rc;
}

struct user_args {
	const char *positional, *role;
	bool password_stdin;
};

static int
parse_user_args(int argc, char **argv, struct user_args *a)
{
	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];

		if (!strcmp(arg, "--password-stdin")) {
			a->password_stdin = true;
		} else if (!strcmp(arg, "--role")) {
			if (++i == argc) {
				cli_errf("usage", "role", "option '--role' needs a value");
				return -EINVAL;
			}
			a->role = argv[i];
		} else if (!strncmp(arg, "--role=", 7)) {
			a->role = arg + 7;
		} else if (arg[0] == '-') {
			/* Name the option, never echo a value. */
			cli_errf("usage", NULL, "unknown option '%.*s'",
				(int)strcspn(arg, "="), arg);
			return -EINVAL;
		} else if (!a->positional) {
			a->positional = arg;
		} else {
			cli_errf("usage", NULL, "unexpected argument '%s'", arg);
			return -EINVAL;
		}
	}
	return 0;
}

static void
print_users(json_t *arr)
{
	size_t i;
	json_t *u;

	printf("%-36s %-24s %-8s %s\n", "ID", "USERNAME", "ROLE", "BUILTIN");
	json_array_foreach(arr, i, u)
		printf("%-36s %-24s %-8s %s\n",
			json_string_value(json_object_get(u, "id")) ?: "",
			json_string_value(json_object_get(u, "username")) ?: "",
			json_string_value(json_object_get(u, "role")) ?: "",
			json_is_true(json_object_get(u, "builtin")) ? "yes" : "no");
}

static int
user_call(const struct cli *c, const char *method, const char *path, json_t *body,
	int want, const char *done)
{
	json_t *reply = NULL;
	int status = cli_request(c, method, path, body, &reply), rc = 0;

	if (status < 0)
		rc = 1;
	else if (status != want)
		rc = cli_print_error(status, reply);
	else if (c->json && reply)
		cli_print_json(reply);
	else if (json_is_array(reply))
		print_users(reply);
	else if (done)
		printf("%s\n", done);
	json_decref(reply);
	return rc;
}

static int
user_add(const struct cli *c, const struct user_args *a)
{
	char *pw = NULL, prompt[128];
	int rc;

	snprintf(prompt, sizeof prompt, "Password for %s: ", a->positional);
	if (cli_read_password(a->password_stdin, prompt, &pw) < 0)
		return 1;
	json_t *body = json_pack("{s:s, s:s, s:s}", "username", a->positional, "password",
		pw, "role", a->role ? a->role : "viewer");
	cli_free_secret(pw);
	rc = user_call(c, "POST", "/v1/users", body, 201, "User created.");
	json_decref(body); /* wiped on free (json_wipe) */
	return rc;
}

int
cli_cmd_user(struct cli *c, const char *sub, int argc, char **argv)
{
	struct user_args a;
	char path[256];

	if (parse_user_args(argc, argv, &a) < 0)
		return 2;
	if (!strcmp(sub, "list"))
		return user_call(c, "GET", "/v1/users", NULL, 200, NULL);
	if (strcmp(sub, "add") && strcmp(sub, "remove")) {
		cli_errf("usage", NULL, "unknown user command '%s'", sub);
		return 2;
	}
	if (!a.positional) {
		cli_errf("usage", NULL, "user %s needs a NAME", sub);
		return 2;
	}
	if (!strcmp(sub, "add"))
		return user_add(c, &a);
	/* The manager takes a username or an id here. */
	if ((size_t)snprintf(path, sizeof path, "/v1/users/%s",
		    a.positional) >= sizeof path ||
		strchr(a.positional, '/') || strchr(a.positional, '?')) {
		cli_errf("not_found", NULL, "no user '%s'", a.positional);
		return 1;
	}
	return user_call(c, "DELETE", path, NULL, 204, "User removed.");
}
