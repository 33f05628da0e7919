/* HTTP, passwords and the token file for the nqrust CLI. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/macro.h"
#include "common/nq_buf.h"

#define REPLY_MAX (8 * 1024 * 1024)
#define PASSWORD_MAX 1024

int
cli_request(const struct cli *c, const char *method, const char *path, json_t *body,
	json_t **ret)
{
	struct curl_slist *hdrs = NULL;
	/* Wiping: a reply may carry a session token (login). */
	_cleanup_(nq_buf_release) struct nq_buf b = NQ_BUF_INIT(REPLY_MAX, true);
	char url[2048], *auth = NULL, *payload = NULL;
	long status = 0;
	CURLcode rc;
	CURL *h;

	if (ret)
		*ret = NULL;
	if ((size_t)snprintf(url, sizeof url, "%s%s", c->url, path) >= sizeof url)
		return -ENAMETOOLONG;
	h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 300L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, nq_buf_write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (c->token && asprintf(&auth, "Authorization: Bearer %s", c->token) > 0)
		hdrs = curl_slist_append(hdrs, auth);
	if (body) {
		payload = json_dumps(body, JSON_COMPACT);
		if (!payload) {
			curl_easy_cleanup(h);
			curl_slist_free_all(hdrs);
			free(auth);
			return -ENOMEM;
		}
		hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(h);
	curl_slist_free_all(hdrs);
	if (payload) {
		explicit_bzero(payload, strlen(payload));
		free(payload);
	}
	if (auth) {
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (rc != CURLE_OK) {
		cli_errf("manager_unreachable", NULL, "cannot reach the manager at %s: %s",
			c->url, curl_easy_strerror(rc));
		return -EHOSTUNREACH;
	}
	if (ret && b.p && b.len)
		*ret = json_loadb(b.p, b.len, 0, NULL);
	return (int)status;
}

int
cli_read_password(bool from_stdin, const char *prompt, char **ret)
{
	char *buf = calloc(1, PASSWORD_MAX + 2);
	struct termios old, quiet;
	FILE *in = stdin;
	bool restore = false;
	int r = 0;

	if (!buf)
		return -ENOMEM;
	if (!from_stdin) {
		in = fopen("/dev/tty", "r+e");
		if (!in) {
			free(buf);
			cli_errf("no_password", NULL,
				"no terminal to ask for the password on; "
				"use --password-stdin");
			return -ENOTTY;
		}
		fprintf(in, "%s", prompt);
		fflush(in);
		if (tcgetattr(fileno(in), &old) == 0) {
			quiet = old;
			quiet.c_lflag &= ~(tcflag_t)ECHO;
			quiet.c_lflag |= ECHONL;
			restore = tcsetattr(fileno(in), TCSAFLUSH, &quiet) == 0;
		}
	}
	if (!fgets(buf, PASSWORD_MAX + 2, in))
		r = -EIO;
	if (restore)
		tcsetattr(fileno(in), TCSAFLUSH, &old);
	if (in != stdin)
		fclose(in);
	if (r == 0) {
		size_t n = strcspn(buf, "\r\n");
		if (n > PASSWORD_MAX)
			r = -E2BIG;
		buf[n] = '\0';
	}
	if (r < 0) {
		cli_free_secret(buf);
		cli_errf("no_password", NULL, "cannot read the password");
		return r;
	}
	*ret = buf;
	return 0;
}

void
cli_free_secret(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

int
cli_token_path(char *buf, size_t sz)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (xdg && *xdg == '/')
		n = snprintf(buf, sz, "%s/nqrust/token", xdg);
	else if (home && *home == '/')
		n = snprintf(buf, sz, "%s/.config/nqrust/token", home);
	else
		return -ENOENT;
	return n > 0 && (size_t)n < sz ? 0 : -ENAMETOOLONG;
}

static int
mkdir_parents(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int r = mkdir(path, 0700);
		*p = '/';
		if (r < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

int
cli_save_token(const char *token)
{
	char path[4096], tmp[4200];
	int fd, r;

	r = cli_token_path(path, sizeof path);
	if (r < 0)
		return r;
	r = mkdir_parents(path);
	if (r < 0)
		return r;
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	size_t n = strlen(token);
	if (write(fd, token, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) < 0) {
		r = -errno;
		close(fd);
		unlink(tmp);
		return r ? r : -EIO;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		return r;
	}
	return 0;
}

char *
cli_load_token(void)
{
	char path[4096], buf[512];
	ssize_t n;
	int fd;

	if (cli_token_path(path, sizeof path) < 0)
		return NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	char *t = buf[0] ? strdup(buf) : NULL;
	explicit_bzero(buf, sizeof buf);
	return t;
}

#define PAGE_LIMIT 1000
#define PAGES_MAX 1000

int
cli_get_all(const struct cli *c, const char *path, json_t **ret)
{
	json_t *all = json_array(), *page = NULL;
	char url[1024];

	if (!all)
		return -ENOMEM;
	for (size_t off = 0, n = 0; n < PAGES_MAX; n++) {
		snprintf(url, sizeof url, "%s%slimit=%d&offset=%zu", path,
			strchr(path, '?') ? "&" : "?", PAGE_LIMIT, off);
		int status = cli_request(c, "GET", url, NULL, &page);
		if (status != 200 || !json_is_array(page)) {
			json_decref(all);
			if (status == 200) /* not a list: hand it on as is */
				status = 502;
			if (ret)
				*ret = page;
			else
				json_decref(page);
			return status;
		}
		size_t got = json_array_size(page);
		json_array_extend(all, page);
		json_decref(page);
		page = NULL;
		/* A short page is the last one (a manager without paging
		 * answers everything at once). */
		if (got < PAGE_LIMIT)
			break;
		off += got;
	}
	*ret = all;
	return 200;
}
