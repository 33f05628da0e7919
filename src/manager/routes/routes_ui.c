/* The web UI: static files under --web-dir served at "/" and "/assets/…",
 * and the runbooks under --docs-dir at "/docs/…". Both directories are
 * opened once at start; every request path is checked against a strict
 * allow-list (letters, digits, '-', '_', '.', '/' separators, no empty or
 * dot-leading segment) and then opened beneath the directory fd with no
 * symlinks followed (fs_open_beneath), so neither ".." nor a symlink can
 * leave the tree. Only known extensions are served, each with its content
 * type, and every reply carries a CSP that allows nothing but this origin.
 *
 * The UI talks to the public API only; these routes need no session (the
 * files hold no data) and are listed last because they are prefix routes. */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "manager/manager.h"
#include "manager/routes/routes.h"
#include "manager/routes/routes_ui.h"

#define UI_FILE_MAX (4u * 1024 * 1024)
#define UI_PATH_MAX 200

static const char ui_headers[] =
	"Content-Security-Policy: default-src 'self'; base-uri 'none'; form-action 'self';"
	" frame-ancestors 'none'; object-src 'none';"
	/* xterm.js sizes and colours its rows with a <style> it writes */
	" style-src 'self' 'unsafe-inline'\n"
	"X-Frame-Options: DENY\n"
	"Referrer-Policy: no-referrer\n";

/* Set once by ui_init() before the server starts; read-only afterwards. */
static int web_fd = -1;
static int docs_fd = -1;

static const struct {
	const char *ext;
	const char *type;
} ui_types[] = {
	{ ".html", "text/html; charset=utf-8" },
	{ ".css", "text/css; charset=utf-8" },
	{ ".js", "text/javascript; charset=utf-8" },
	{ ".svg", "image/svg+xml" },
	{ ".png", "image/png" },
	{ ".ico", "image/x-icon" },
	{ ".json", "application/json" },
	{ ".md", "text/markdown; charset=utf-8" },
};

/* The content type for an allowed extension, or NULL. */
static const char *
ui_content_type(const char *path)
{
	const char *dot = strrchr(path, '.');

	if (!dot || strchr(dot, '/'))
		return NULL;
	for (size_t i = 0; i < ARRAY_SIZE(ui_types); i++)
		if (strcmp(dot, ui_types[i].ext) == 0)
			return ui_types[i].type;
	return NULL;
}

/* True when rel is a safe relative path: segments of [A-Za-z0-9._-], none
 * empty, none starting with '.', no leading '/'. */
bool
ui_path_ok(const char *rel)
{
	size_t len = strlen(rel);
	bool seg_start = true;

	if (len == 0 || len > UI_PATH_MAX)
		return false;
	for (const char *p = rel; *p; p++) {
		char c = *p;

		if (c == '/') {
			if (seg_start)
				return false; /* empty segment or leading '/' */
			seg_start = true;
			continue;
		}
		if (seg_start && c == '.')
			return false; /* ".", "..", hidden files */
		seg_start = false;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return !seg_start; /* no trailing '/' */
}

static void
ui_not_found(struct http_response *resp)
{
	http_reply_errorf(resp, "not_found", NULL, "no such file");
}

static void
serve(int dirfd, const char *rel, struct http_response *resp)
{
	const char *type = ui_content_type(rel);
	char *data = NULL;
	size_t len = 0;
	int r;

	if (dirfd < 0 || !type || !ui_path_ok(rel)) {
		ui_not_found(resp);
		return;
	}
	/* fs_read_file: beneath dirfd without symlinks, regular files only,
	 * and a planted FIFO does not hang the thread. */
	r = fs_read_file(dirfd, rel, UI_FILE_MAX, &data, &len);
	if (r < 0) {
		if (r != -ENOENT)
			log_warn("cannot read UI file path=%s err=%d", rel, r);
		ui_not_found(resp);
		return;
	}
	free(resp->body);
	resp->status = 200;
	resp->body = data;
	resp->body_len = len;
	resp->content_type = type;
	resp->extra_headers = strdup(ui_headers);
}

static void
ui_index(struct http_request *req, struct http_response *resp)
{
	(void)req;
	serve(web_fd, "index.html", resp);
}

static void
ui_asset(struct http_request *req, struct http_response *resp)
{
	/* req->path starts with "/assets/"; the directory is web/assets. */
	serve(web_fd, req->path + 1, resp);
}

/* Third-party files from web/node_modules (web/package.json, installed by
 * `npm ci` at build time): fixed paths only, named by the route data. */
static void
ui_vendor(struct http_request *req, struct http_response *resp)
{
	const char *rel = req->route_data;
	char *data = NULL;
	size_t len = 0;

	if (web_fd < 0 || fs_read_file(web_fd, rel, UI_FILE_MAX, &data, &len) < 0) {
		ui_not_found(resp);
		return;
	}
	free(resp->body);
	resp->status = 200;
	resp->body = data;
	resp->body_len = len;
	resp->content_type = ui_content_type(rel);
	resp->extra_headers = strdup(ui_headers);
}

static void
ui_doc(struct http_request *req, struct http_response *resp)
{
	serve(docs_fd, req->path + strlen("/docs/"), resp);
}

const struct http_route ui_routes[] = {
	{ "GET", "/", ui_index, ROUTE_NO_AUTH, 0, NULL },
	{ "GET", "/index.html", ui_index, ROUTE_NO_AUTH, 0, NULL },
	{ "GET", "/vendor/xterm.js", ui_vendor, ROUTE_NO_AUTH, 0,
		"node_modules/@xterm/xterm/lib/xterm.js" },
	{ "GET", "/vendor/xterm.css", ui_vendor, ROUTE_NO_AUTH, 0,
		"node_modules/@xterm/xterm/css/xterm.css" },
	{ "GET", "/assets/", ui_asset, ROUTE_NO_AUTH | ROUTE_PREFIX, 0, NULL },
	{ "GET", "/docs/", ui_doc, ROUTE_NO_AUTH | ROUTE_PREFIX, 0, NULL },
};
const size_t ui_routes_count = ARRAY_SIZE(ui_routes);

static int
open_dir(const char *path)
{
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* The directory of the running binary, for the defaults. */
static int
exe_dir(char *buf, size_t sz)
{
	ssize_t n = readlink("/proc/self/exe", buf, sz - 1);
	char *slash;

	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (!slash)
		return -EIO;
	*slash = '\0';
	return 0;
}

int
ui_init(const struct mgr_config *cfg)
{
	char exe[PATH_MAX], path[PATH_MAX + 32];

	if (cfg->web_dir[0]) {
		web_fd = open_dir(cfg->web_dir);
		snprintf(path, sizeof path, "%s", cfg->web_dir);
	} else {
		path[0] = '\0';
		if (exe_dir(exe, sizeof exe) == 0) {
			snprintf(path, sizeof path, "%s/../web", exe);
			web_fd = open_dir(path);
		}
		if (web_fd < 0) {
			snprintf(path, sizeof path, "/usr/share/nqrust/web");
			web_fd = open_dir(path);
		}
	}
	if (web_fd < 0) {
		log_warn("web UI not served: cannot open web dir path=%s", path);
		return 0; /* the API works without the UI */
	}
	log_info("web UI dir=%s", path);
	if (cfg->docs_dir[0]) {
		snprintf(path, sizeof path, "%s", cfg->docs_dir);
		docs_fd = open_dir(path);
	} else {
		docs_fd = openat(web_fd, "../docs", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		snprintf(path, sizeof path, "<web-dir>/../docs");
	}
	if (docs_fd < 0)
		log_warn("runbooks not served: cannot open docs dir path=%s", path);
	return 0;
}
