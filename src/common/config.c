#include "common/config.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <fcntl.h>

/* The config file is the operator's: read it by path, at most 1 MiB. */
static int
read_small_file(const char *path, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t cap = 1 << 20, len = 0;
	char *buf;

	if (fd < 0)
		return negerrno();
	buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return negerrno();
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap) {
			free(buf);
			return -EFBIG;
		}
	}
	buf[len] = '\0';
	*ret = buf;
	*ret_len = len;
	return 0;
}

static bool
name_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++)
		if (*a != *b && !((*a == '-' || *a == '_') && (*b == '-' || *b == '_')))
			return false;
	return *a == *b;
}

static const struct config_entry *
lookup(const struct config_entry *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (name_eq(t[i].name, name))
			return &t[i];
	return NULL;
}

int
config_set(const struct config_entry *t, size_t n, void *obj, const char *name,
	const char *value, struct nq_error *err)
{
	const struct config_entry *e = lookup(t, n, name);
	char *field;

	if (!e)
		return nq_error_set(err, "invalid_field", name, "unknown setting '%.64s'",
			name);
	if (e->check && e->check(name, value, err) < 0)
		return -EINVAL;
	field = (char *)obj + e->offset;
	switch (e->type) {
	case CFG_STRING: {
		char *dup = strdup(value);
		if (!dup)
			return -ENOMEM;
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	}
	case CFG_STRBUF:
		if (strlen(value) >= e->size)
			return nq_error_set(err, "invalid_field", e->name,
				"%s is too long (at most %zu characters)", e->name,
				e->size - 1);
		memcpy(field, value, strlen(value) + 1);
		return 0;
	case CFG_UINT: {
		unsigned max = e->max ? e->max : UINT_MAX;
		char *end;
		unsigned long v;

		errno = 0;
		v = strtoul(value, &end, 10);
		if (!*value || *end || errno || v > UINT_MAX || value[0] == '-' ||
			v < e->min || v > max)
			return nq_error_set(err, "invalid_field", e->name,
				"%s must be an integer in %u..%u", e->name, e->min, max);
		*(unsigned *)field = (unsigned)v;
		return 0;
	}
	case CFG_BOOL:
		if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1"))
			*(bool *)field = true;
		else if (!strcmp(value, "false") || !strcmp(value, "no") ||
			 !strcmp(value, "0"))
			*(bool *)field = false;
		else
			return nq_error_set(err, "invalid_field", name,
				"%s must be true or false", name);
		return 0;
	}
	return -EINVAL;
}

int
config_defaults(const struct config_entry *t, size_t n, void *obj, struct nq_error *err)
{
	int r;

	for (size_t i = 0; i < n; i++)
		if (t[i].def && (r = config_set(t, n, obj, t[i].name, t[i].def, err)) < 0)
			return r;
	return 0;
}

static char *
trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

int
config_load_file(const struct config_entry *t, size_t n, void *obj, const char *path,
	struct nq_error *err)
{
	_cleanup_free_ char *buf = NULL;
	char *save = NULL;
	size_t len;
	unsigned lineno = 0;
	int r;

	r = read_small_file(path, &buf, &len);
	if (r < 0)
		return nq_error_setr(err, r, "invalid_field", "config",
			"cannot read config file %.200s: %s", path, strerror(-r));
	for (char *line = strtok_r(buf, "\n", &save); line;
		line = strtok_r(NULL, "\n", &save)) {
		char *eq, *key, *val;

		lineno++;
		line = trim(line);
		if (*line == '\0' || *line == '#')
			continue;
		eq = strchr(line, '=');
		if (!eq)
			return nq_error_set(err, "invalid_field", "config",
				"%.200s:%u: expected 'name = value'", path, lineno);
		*eq = '\0';
		key = trim(line);
		val = trim(eq + 1);
		r = config_set(t, n, obj, key, val, err);
		if (r < 0) {
			if (err) {
				char sub[sizeof err->message];
				snprintf(sub, sizeof sub, "%s", err->message);
				snprintf(err->message, sizeof err->message,
					"%.200s:%u: %s", path, lineno, sub);
			}
			return r;
		}
	}
	return 0;
}

static void
flag_to_name(const char *flag, char *buf, size_t bufsz)
{
	size_t i;

	for (i = 0; flag[i] && i + 1 < bufsz; i++)
		buf[i] = flag[i] == '-' ? '_' : flag[i];
	buf[i] = '\0';
}

void
config_usage(const struct config_entry *t, size_t n, const char *progname, FILE *out)
{
	fprintf(out, "usage: %s [--config FILE] [options]\n", progname);
	for (size_t i = 0; i < n; i++) {
		char flag[64];
		size_t k;

		for (k = 0; t[i].name[k] && k + 1 < sizeof flag; k++)
			flag[k] = t[i].name[k] == '_' ? '-' : t[i].name[k];
		flag[k] = '\0';
		fprintf(out, "  --%-20s %s\n", flag, t[i].help ? t[i].help : "");
	}
}

int
config_parse_args(const struct config_entry *t, size_t n, void *obj, int argc, char **argv,
	struct nq_error *err)
{
	int r;

	/* --config first, so flags override the file whatever their order. */
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return 1;
		const char *file = NULL;
		if (!strcmp(argv[i], "--config")) {
			if (i + 1 >= argc)
				return nq_error_set(err, "invalid_field", "config",
					"--config needs a file name");
			file = argv[++i];
		} else if (!strncmp(argv[i], "--config=", 9)) {
			file = argv[i] + 9;
		}
		if (file && (r = config_load_file(t, n, obj, file, err)) < 0)
			return r;
	}
	for (int i = 1; i < argc; i++) {
		char name[64];
		const char *a = argv[i], *val;

		if (strncmp(a, "--", 2) != 0)
			return nq_error_set(err, "invalid_field", NULL,
				"unexpected argument '%.64s'", a);
		const char *eq = strchr(a, '=');
		if (eq) {
			char flag[64];
			size_t fl = (size_t)(eq - a - 2);
			if (fl >= sizeof flag)
				fl = sizeof flag - 1;
			memcpy(flag, a + 2, fl);
			flag[fl] = '\0';
			flag_to_name(flag, name, sizeof name);
			val = eq + 1;
		} else {
			flag_to_name(a + 2, name, sizeof name);
			if (i + 1 >= argc)
				return nq_error_set(err, "invalid_field", name,
					"--%.64s needs a value", a + 2);
			val = argv[++i];
		}
		if (!strcmp(name, "config"))
			continue; /* loaded above */
		r = config_set(t, n, obj, name, val, err);
		if (r < 0)
			return r;
	}
	return 0;
}

void
config_release(const struct config_entry *t, size_t n, void *obj)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].type == CFG_STRING) {
			char **f = (char **)((char *)obj + t[i].offset);
			free(*f);
			*f = NULL;
		}
}
