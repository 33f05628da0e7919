/* nqrust — command-line client of the nqrust manager.
 *
 *   nqrust [--url URL] [--token T] [--json] COMMAND ...
 *
 * The token comes from --token, else NQRUST_TOKEN, else the file written
 * by `nqrust login` (~/.config/nqrust/token, mode 0600). Passwords are read
 * from a no-echo prompt or with --password-stdin, never from argv. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_wipe.h"
#include "cli/cli.h"

#define DEFAULT_URL "http://127.0.0.1:18080"

static const char usage_text[] =
	"usage: nqrust [--url URL] [--token TOKEN] [--json] COMMAND\n"
	"\n"
	"  login --username USER [--password-stdin] | logout\n"
	"  backend list | backend get ID|NAME\n"
	"  backend create --name NAME [--kind smb|localfile] [--server HOST --share SHARE\n"
	"                 [--username USER [--domain DOM]] [--smb-version V] [--subdir DIR]\n"
	"                 [--mount-options OPTS] [--mount-base DIR]] [--path DIR]\n"
	"                 [--default] [--password-stdin]\n"
	"  backend update ID|NAME [--name NAME] [--server …] [--share …] [--username …]\n"
	"                 [--domain …] [--smb-version …] [--subdir …] [--mount-options …]\n"
	"                 [--mount-base …] [--path …] [--default]\n"
	"                 [--rotate-password] [--password-stdin]\n"
	"  backend rotate-password ID|NAME [--password-stdin]\n"
	"  backend delete ID|NAME\n"
	"  backend cache list ID|NAME | backend cache purge ID|NAME [HASH]\n"
	"  volume list\n"
	"  volume create --backend ID|NAME --size SIZE [--image NAME]\n"
	"  volume delete ID\n"
	"  image list\n"
	"  vm list\n"
	"  vm get|start|restart|delete ID|NAME\n"
	"  vm stop ID|NAME [--yes]           (power off; asks first on a terminal)\n"
	"  vm shutdown ID|NAME [--timeout S] (the guest powers off; off after S s)\n"
	"  vm set ID|NAME [--vcpus N] [--memory MIB]   (while stopped)\n"
	"  vm create --name NAME --image IMAGE [--vcpus N] [--memory MIB]\n"
	"            [--backend ID|NAME]   (default backend when omitted)\n"
	"            [--host NAME|ID]      (placed automatically when omitted) [--ha]\n"
	"  vm create --name NAME --from-snapshot ID|VM/NAME [--vcpus N] [--memory MIB]\n"
	"  vm snapshot create VM --name NAME | vm snapshot list VM | vm snapshot delete VM SNAP\n"
	"  vm revert VM --to SNAP (VM stopped; by id or name) | vm migrate ID|NAME --to HOST\n"
	"  vm console ID|NAME [--read-only]   (Ctrl-] detaches)\n"
	"  host add --name NAME --url https://HOST:PORT --token-file FILE|-\n"
	"           [--fingerprint SHA256]   (the token never on the command line)\n"
	"  host list [--json] | host drain NAME|ID [--off] | host remove NAME|ID\n"
	"  user list | user add NAME [--role admin|viewer] [--password-stdin]\n"
	"  user remove NAME|ID\n"
	"  events [-f] [--object ID|TYPE:ID] [--action A|PREFIX*] [--since T] [--limit N]\n"
	"\n"
	"Environment: NQRUST_URL, NQRUST_TOKEN.\n";

static int
usage(int code)
{
	if (code && cli_json_errors)
		cli_errf("usage", NULL, "bad command line; see nqrust --help");
	else
		fputs(usage_text, code ? stderr : stdout);
	return code;
}

enum {
	O_NAME = 1000,
	O_KIND,
	O_SERVER,
	O_SHARE,
	O_USERNAME,
	O_DOMAIN,
	O_SMBVER,
	O_SUBDIR,
	O_MOUNTOPTS,
	O_MOUNTBASE,
	O_PATH,
	O_DEFAULT,
	O_PWSTDIN,
	O_ROTATE,
	O_BACKEND,
	O_SIZE,
	O_IMAGE,
	O_VCPUS,
	O_MEMORY,
	O_HOST,
	O_HA,
	O_TO,
	O_TIMEOUT,
	O_YES,
};

static const struct option cmd_opts[] = {
	{ "name", required_argument, NULL, O_NAME },
	{ "kind", required_argument, NULL, O_KIND },
	{ "server", required_argument, NULL, O_SERVER },
	{ "share", required_argument, NULL, O_SHARE },
	{ "username", required_argument, NULL, O_USERNAME },
	{ "domain", required_argument, NULL, O_DOMAIN },
	{ "smb-version", required_argument, NULL, O_SMBVER },
	{ "subdir", required_argument, NULL, O_SUBDIR },
	{ "mount-options", required_argument, NULL, O_MOUNTOPTS },
	{ "mount-base", required_argument, NULL, O_MOUNTBASE },
	{ "path", required_argument, NULL, O_PATH },
	{ "default", no_argument, NULL, O_DEFAULT },
	{ "password-stdin", no_argument, NULL, O_PWSTDIN },
	{ "rotate-password", no_argument, NULL, O_ROTATE },
	{ "backend", required_argument, NULL, O_BACKEND },
	{ "size", required_argument, NULL, O_SIZE },
	{ "image", required_argument, NULL, O_IMAGE },
	{ "vcpus", required_argument, NULL, O_VCPUS },
	{ "memory", required_argument, NULL, O_MEMORY },
	{ "host", required_argument, NULL, O_HOST },
	{ "ha", no_argument, NULL, O_HA },
	{ "to", required_argument, NULL, O_TO },
	{ "timeout", required_argument, NULL, O_TIMEOUT },
	{ "yes", no_argument, NULL, O_YES },
	{ NULL, 0, NULL, 0 },
};

/* What a subcommand was given. */
struct args {
	json_t *config; /* config keys given on the command line */
	const char *name, *kind, *username, *backend, *size, *image, *vcpus, *memory;
	const char *host, *to, *timeout;
	bool set_default, password_stdin, rotate, ha, yes;
	const char *positional;
};

static const char *
config_key(int opt)
{
	switch (opt) {
	case O_SERVER:
		return "server";
	case O_SHARE:
		return "share";
	case O_USERNAME:
		return "username";
	case O_DOMAIN:
		return "domain";
	case O_SMBVER:
		return "smb_version";
	case O_SUBDIR:
		return "subdir";
	case O_MOUNTOPTS:
		return "mount_options";
	case O_MOUNTBASE:
		return "mount_base";
	case O_PATH:
		return "path";
	default:
		return NULL;
	}
}

/* getopt_long accepts unambiguous prefixes ("--password" would mean
 * --password-stdin, and the next word — maybe a password — would become an
 * argument). Demand exact option names, and never echo a value. */
static int
exact_options(int argc, char **argv, const struct option *opts)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t n;
		bool ok = false;

		if (strcmp(a, "--") == 0)
			break;
		if (strncmp(a, "--", 2) != 0)
			continue;
		n = strcspn(a + 2, "=");
		for (const struct option *o = opts; o->name; o++) {
			if (strlen(o->name) == n && strncmp(o->name, a + 2, n) == 0) {
				ok = true;
				if (o->has_arg == required_argument && !a[2 + n])
					i++; /* skip its value */
			}
		}
		if (!ok) {
			cli_errf("usage", NULL, "unknown option '--%.*s'", (int)n, a + 2);
			return -EINVAL;
		}
	}
	return 0;
}

/* Where a plain string option goes, or NULL. */
static const char **
string_slot(struct args *a, int opt)
{
	switch (opt) {
	case O_NAME:
		return &a->name;
	case O_KIND:
		return &a->kind;
	case O_BACKEND:
		return &a->backend;
	case O_SIZE:
		return &a->size;
	case O_IMAGE:
		return &a->image;
	case O_VCPUS:
		return &a->vcpus;
	case O_MEMORY:
		return &a->memory;
	case O_HOST:
		return &a->host;
	case O_TO:
		return &a->to;
	case O_TIMEOUT:
		return &a->timeout;
	default:
		return NULL;
	}
}

static int
parse_args(int argc, char **argv, struct args *a)
{
	int opt;

	memset(a, 0, sizeof *a);
	if (exact_options(argc, argv, cmd_opts) < 0)
		return -EINVAL;
	a->config = json_object();
	optind = 0; /* 0: full re-initialisation (GNU), so options may follow arguments */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", cmd_opts, NULL)) != -1) {
		const char *key = config_key(opt);

		const char **slot = string_slot(a, opt);

		if (key) {
			json_object_set_new(a->config, key, json_string(optarg));
			if (opt == O_USERNAME)
				a->username = optarg;
			continue;
		}
		if (slot) {
			*slot = optarg;
			continue;
		}
		switch (opt) {
		case O_DEFAULT:
			a->set_default = true;
			break;
		case O_PWSTDIN:
			a->password_stdin = true;
			break;
		case O_ROTATE:
			a->rotate = true;
			break;
		case O_HA:
			a->ha = true;
			break;
		case O_YES:
			a->yes = true;
			break;
		default: {
			/* Name the option, never echo a value (it could be a
			 * password typed by mistake). */
			const char *bad = argv[optind - 1];
			cli_errf("usage", NULL, "unknown or incomplete option '%.*s'",
				(int)strcspn(bad, "="), bad);
			return -EINVAL;
		}
		}
	}
	if (optind < argc)
		a->positional = argv[optind++];
	if (optind < argc) {
		cli_errf("usage", NULL, "unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int
ok_or_error(int status, json_t *reply, int want)
{
	if (status < 0)
		return 1;
	if (status != want)
		return cli_print_error(status, reply);
	return 0;
}

/* ID, or the id of the backend with that name. */
static int
resolve_backend(const struct cli *c, const char *ref, char *buf, size_t sz)
{
	json_t *list = NULL, *b;
	size_t i;
	int status;

	status = cli_request(c, "GET", "/v1/storage/backends", NULL, &list);
	if (status != 200) {
		ok_or_error(status, list, 200);
		json_decref(list);
		return -EIO;
	}
	json_array_foreach(list, i, b) {
		const char *id = json_string_value(json_object_get(b, "id"));
		const char *name = json_string_value(json_object_get(b, "name"));

		if ((id && strcmp(id, ref) == 0) || (name && strcmp(name, ref) == 0)) {
			snprintf(buf, sz, "%s", id);
			json_decref(list);
			return 0;
		}
	}
	json_decref(list);
	cli_errf("not_found", NULL, "no backend with id or name '%s'", ref);
	return -ENOENT;
}

static int
simple(struct cli *c, const char *method, const char *path, json_t *body, int want,
	void (*print)(json_t *), const char *done_msg)
{
	json_t *reply = NULL;
	int status = cli_request(c, method, path, body, &reply);
	int rc = ok_or_error(status, reply, want);

	if (rc == 0) {
		if (c->json && reply)
			cli_print_json(reply);
		else if (print && reply)
			print(reply);
		else if (done_msg && !c->json)
			printf("%s\n", done_msg);
	}
	json_decref(reply);
	return rc;
}

static int
cmd_backend(struct cli *c, const char *sub, struct args *a)
{
	char id[128], path[256];
	char *pw = NULL;
	int rc;

	if (strcmp(sub, "list") == 0)
		return simple(c, "GET", "/v1/storage/backends", NULL, 200,
			cli_print_backends, NULL);
	if (strcmp(sub, "create") == 0) {
		if (!a->name) {
			cli_errf("usage", NULL, "backend create needs --name");
			return 2;
		}
		if (a->username && *a->username &&
			cli_read_password(a->password_stdin, "SMB password: ", &pw) < 0)
			return 1;
		if (pw)
			json_object_set_new(a->config, "password", json_string(pw));
		cli_free_secret(pw);
		json_t *body = json_pack("{s:s, s:s, s:O}", "name", a->name, "kind",
			a->kind ? a->kind : "smb", "config", a->config);
		if (a->set_default)
			json_object_set_new(body, "is_default", json_true());
		rc = simple(c, "POST", "/v1/storage/backends", body, 201,
			cli_print_backend, NULL);
		json_decref(body);
		return rc;
	}
	if (!a->positional) {
		cli_errf("usage", NULL, "backend %s needs an ID or NAME", sub);
		return 2;
	}
	if (resolve_backend(c, a->positional, id, sizeof id) < 0)
		return 1;
	snprintf(path, sizeof path, "/v1/storage/backends/%s", id);
	if (strcmp(sub, "get") == 0)
		return simple(c, "GET", path, NULL, 200, cli_print_backend, NULL);
	if (strcmp(sub, "delete") == 0)
		return simple(c, "DELETE", path, NULL, 204, NULL, "Backend removed.");
	if (strcmp(sub, "update") == 0 || strcmp(sub, "rotate-password") == 0) {
		bool rotate = a->rotate || a->password_stdin ||
			      strcmp(sub, "rotate-password") == 0;
		json_t *body = json_object();

		if (a->name)
			json_object_set_new(body, "name", json_string(a->name));
		if (json_object_size(a->config))
			json_object_set(body, "config", a->config);
		if (a->set_default)
			json_object_set_new(body, "is_default", json_true());
		if (rotate) {
			if (cli_read_password(a->password_stdin,
				    "New SMB password: ", &pw) < 0) {
				json_decref(body);
				return 1;
			}
			json_object_set_new(body, "rotate_password", json_string(pw));
			cli_free_secret(pw);
		}
		rc = simple(c, "PATCH", path, body, 200, cli_print_backend, NULL);
		json_decref(body);
		return rc;
	}
	cli_errf("usage", NULL, "unknown backend command '%s'", sub);
	return 2;
}

static int
cmd_volume(struct cli *c, const char *sub, struct args *a)
{
	char id[128], path[256];
	unsigned long long size = 0;
	int rc;

	if (strcmp(sub, "list") == 0)
		return simple(c, "GET", "/v1/volumes", NULL, 200, cli_print_volumes, NULL);
	if (strcmp(sub, "create") == 0) {
		if (!a->backend || (!a->size && !a->image)) {
			cli_errf("usage", NULL, "volume create needs --backend and --size");
			return 2;
		}
		if (a->size && cli_parse_size(a->size, &size) < 0) {
			cli_errf("usage", NULL, "bad --size '%s' (e.g. 4096, 512M, 10G)",
				a->size);
			return 2;
		}
		if (resolve_backend(c, a->backend, id, sizeof id) < 0)
			return 1;
		json_t *body = json_pack("{s:s}", "backend_id", id);
		if (size)
			json_object_set_new(body, "size_bytes",
				json_integer((json_int_t)size));
		if (a->image)
			json_object_set_new(body, "image", json_string(a->image));
		rc = simple(c, "POST", "/v1/volumes", body, 201, NULL, NULL);
		if (rc == 0 && !c->json)
			printf("Volume created.\n");
		json_decref(body);
		return rc;
	}
	if (strcmp(sub, "delete") == 0) {
		if (!a->positional) {
			cli_errf("usage", NULL, "volume delete needs an ID");
			return 2;
		}
		snprintf(path, sizeof path, "/v1/volumes/%s", a->positional);
		return simple(c, "DELETE", path, NULL, 204, NULL, "Volume deleted.");
	}
	cli_errf("usage", NULL, "unknown volume command '%s'", sub);
	return 2;
}

/* The global options (only those before the command) into *c and *token.
 * Returns -1 to go on, with optind naming the command, or the exit
 * status. */
static int
parse_global(int argc, char **argv, struct cli *c, const char **token)
{
	static const struct option global[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int gargc = 1, opt;

	opterr = 0;
	while (gargc < argc && argv[gargc][0] == '-') {
		bool takes = strcmp(argv[gargc], "--url") == 0 ||
			     strcmp(argv[gargc], "--token") == 0;
		gargc += takes ? 2 : 1;
	}
	if (exact_options(gargc < argc ? gargc : argc, argv, global) < 0)
		return usage(2);
	while ((opt = getopt_long(argc, argv, "+h", global, NULL)) != -1) {
		switch (opt) {
		case 'u':
			c->url = optarg;
			break;
		case 't':
			*token = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		case 'h':
			return usage(0);
		default:
			cli_errf("usage", NULL, "unknown or incomplete option '%.*s'",
				(int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
			return usage(2);
		}
	}
	if (optind >= argc)
		return usage(2);
	return -1;
}

/* Parse the command's own options and run it; the exit status. */
static int
run_command(struct cli *c, const char *cmd, const char *sub, int argc, char **argv)
{
	struct args a;
	int rc;

	if (strcmp(cmd, "host") == 0)
		return cli_cmd_host(c, sub, argc, argv); /* its own options */
	if (strcmp(cmd, "vm") == 0 && sub && strcmp(sub, "console") == 0)
		return cli_vm_console(c, argc, argv); /* its own options */
	if (strcmp(cmd, "user") == 0)
		return cli_cmd_user(c, sub, argc, argv); /* its own options */
	if (strcmp(cmd, "events") == 0)
		return cli_cmd_events(c, argc, argv); /* its own options */
	if (!strcmp(cmd, "vm") && cli_is_snapshot_cmd(sub, argc, argv))
		return cli_cmd_snapshot(c, sub, argc, argv);
	if (strcmp(cmd, "backend") == 0 && strcmp(sub, "cache") == 0)
		return cli_cmd_backend_cache(c, argc, argv);
	if (parse_args(argc, argv, &a) < 0) {
		rc = 2;
	} else if (strcmp(cmd, "login") == 0) {
		rc = cli_cmd_login(c, a.username, a.password_stdin);
	} else if (strcmp(cmd, "logout") == 0) {
		rc = simple(c, "POST", "/v1/auth/logout", NULL, 204, NULL, "Logged out.");
	} else if (strcmp(cmd, "backend") == 0) {
		rc = cmd_backend(c, sub, &a);
	} else if (strcmp(cmd, "volume") == 0) {
		rc = cmd_volume(c, sub, &a);
	} else if (strcmp(cmd, "vm") == 0) {
		struct vm_args va = { a.name, a.image, a.backend, a.vcpus, a.memory,
			a.positional, a.host, a.to, a.timeout, a.ha, a.yes };
		rc = cli_cmd_vm(c, sub, &va);
	} else if (strcmp(cmd, "image") == 0) {
		rc = cli_cmd_image(c, sub);
	} else {
		cli_errf("usage", NULL, "unknown command '%s'", cmd);
		rc = usage(2);
	}
	json_decref(a.config);
	return rc;
}

int
main(int argc, char **argv)
{
	struct cli c = { .url = getenv("NQRUST_URL") };
	const char *token = getenv("NQRUST_TOKEN");
	int rc;

	json_wipe_install(); /* passwords pass through jansson */
	for (int i = 1; i < argc && argv[i][0] == '-'; i++)
		if (!strcmp(argv[i], "--json"))
			cli_json_errors = true; /* before any error is printed */
	rc = parse_global(argc, argv, &c, &token);
	if (rc >= 0)
		return rc;
	if (!c.url || !*c.url)
		c.url = DEFAULT_URL;
	char *url = strdup(c.url);
	if (!url)
		return 1;
	for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
		url[n - 1] = '\0';
	c.url = url;
	c.token = token && *token ? strdup(token) : cli_load_token();

	const char *cmd = argv[optind];
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;
	const char *sub = NULL;

	if (strcmp(cmd, "backend") == 0 || strcmp(cmd, "volume") == 0 ||
		strcmp(cmd, "vm") == 0 || strcmp(cmd, "image") == 0 ||
		strcmp(cmd, "host") == 0 || strcmp(cmd, "user") == 0) {
		if (sub_argc < 2) {
			free(url);
			return usage(2);
		}
		sub = sub_argv[1];
		sub_argc--;
		sub_argv++;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = run_command(&c, cmd, sub, sub_argc, sub_argv);
	if (c.token) {
		explicit_bzero(c.token, strlen(c.token));
		free(c.token);
	}
	free(url);
	curl_global_cleanup();
	return rc;
}
