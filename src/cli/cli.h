/* nqrust: command-line client of the manager API (DESIGN.md §5, §7). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct cli {
	const char *url; /* manager base URL, no trailing slash */
	char *token;     /* owned; NULL when not logged in */
	bool json;       /* --json: print API JSON as is */
};

/* One API call. body (may be NULL) is sent as JSON; the dumped copy is
 * wiped after the call, since it may carry a password. Returns the HTTP
 * status (>= 100) with *ret (may be NULL) holding the parsed reply (owned),
 * or -errno when the manager could not be reached (message printed). */
int cli_request(const struct cli *c, const char *method, const char *path, json_t *body,
	json_t **ret);
/* Errors (cli_errors.c). With --json (cli_json_errors) every error is
 * printed as {"error": {"code", "message", "field"?}} on stdout (and on
 * stderr unless that is a terminal); otherwise as "nqrust: message" on
 * stderr. */
extern bool cli_json_errors;
void cli_errf(const char *code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Print an API error reply (the reply's error object, plus its HTTP
 * status, with --json); returns the exit code (1). */
int cli_print_error(int status, json_t *reply);

/* Read a password: one line from stdin with --password-stdin, else a
 * no-echo prompt on /dev/tty. *ret is owned by the caller (wipe + free). */
int cli_read_password(bool from_stdin, const char *prompt, char **ret);
void cli_free_secret(char *s);

/* Output. */
void cli_print_json(json_t *j);
void cli_print_backends(json_t *arr);
void cli_print_backend(json_t *b);
void cli_print_volumes(json_t *arr);
/* "1.5 GiB"; buf of at least 16 bytes. */
void cli_human_bytes(unsigned long long n, char *buf, size_t sz);
/* "10G", "512M", "4096" → bytes; -EINVAL. */
int cli_parse_size(const char *s, unsigned long long *ret);

/* VMs and images (cli_vms.c). */
struct vm_args {
	const char *name, *image, *backend, *vcpus, *memory, *positional;
	const char *host;    /* vm create --host NAME|ID */
	const char *to;      /* vm migrate --to NAME|ID */
	const char *timeout; /* vm shutdown --timeout SECONDS */
	bool ha;             /* vm create --ha */
	bool yes;            /* vm stop --yes: no question on a terminal */
};
int cli_cmd_vm(struct cli *c, const char *sub, const struct vm_args *a);
/* The id of the element of GET list_path (all pages for /v1/vms) whose id
 * or name is ref, into buf; -1 after printing the error (not_found naming
 * what). */
int cli_resolve(const struct cli *c, const char *list_path, const char *what,
	const char *ref, char *buf, size_t sz);
/* cli_console.c: vm get in words; vm console VM [--read-only] with its
 * own options (argv[0] is "console"). */
int cli_vm_get(struct cli *c, const char *id);
int cli_vm_console(struct cli *c, int argc, char **argv);
int cli_cmd_image(struct cli *c, const char *sub);

/* login and user add|list|remove (cli_users.c; user has its own options,
 * argv[0] is the subcommand). */
int cli_cmd_login(struct cli *c, const char *username, bool password_stdin);
int cli_cmd_user(struct cli *c, const char *sub, int argc, char **argv);

/* Snapshots (cli_snapshots.c): vm snapshot create|list|delete, vm revert,
 * vm create --from-snapshot, with their own options (argv[0] is the vm
 * subcommand). */
bool cli_is_snapshot_cmd(const char *sub, int argc, char **argv);
int cli_cmd_snapshot(struct cli *c, const char *sub, int argc, char **argv);

/* nqrust backend cache list|purge BACKEND [ENTRY] (cli_cache.c); argv[0]
 * is "cache". */
int cli_cmd_backend_cache(struct cli *c, int argc, char **argv);

/* Hosts (cli_hosts.c): host add|list|drain|remove with their own options
 * (argv[0] is the subcommand). */
int cli_cmd_host(struct cli *c, const char *sub, int argc, char **argv);
/* The id of the host whose id or name is ref, into buf; errors printed. */
int cli_resolve_host(const struct cli *c, const char *ref, char *buf, size_t sz);

/* nqrust events [-f] [filters] (cli_events.c); argv[0] is "events". */
int cli_cmd_events(struct cli *c, int argc, char **argv);

/* GET a paged list (?limit=&offset=, DESIGN §5) page by page into one
 * array (*ret owned). Returns the HTTP status of the failing page or 200;
 * -errno when the manager could not be reached. */
int cli_get_all(const struct cli *c, const char *path, json_t **ret);

/* Token file ($XDG_CONFIG_HOME or ~/.config)/nqrust/token. */
int cli_token_path(char *buf, size_t sz);
int cli_save_token(const char *token);
/* Owned string or NULL. */
char *cli_load_token(void);
