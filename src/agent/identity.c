/* The agent's id and host name. */
#include "agent/identity.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/macro.h"

/* A random (version 4) UUID, lower case. */
static int
new_uuid(char out[NQ_UUID_LEN + 1])
{
	unsigned char b[16];

	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b)
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, NQ_UUID_LEN + 1,
		"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		b[12], b[13], b[14], b[15]);
	return 0;
}

static int
load_id(struct agent *a)
{
	_cleanup_free_ char *text = NULL;
	struct nq_error err = { 0 };
	char line[NQ_UUID_LEN + 2];
	size_t len;
	int r;

	r = fs_read_file(a->state_dirfd, AGENT_ID_FILE, 256, &text, &len);
	if (r == -ENOENT) {
		if ((r = new_uuid(a->agent_id)) < 0)
			return r;
		snprintf(line, sizeof line, "%s\n", a->agent_id);
		r = fs_write_atomic(a->state_dirfd, AGENT_ID_FILE, line, strlen(line),
			0644);
		if (r < 0) {
			log_error("cannot write the agent id path=%s/%s err=%s",
				a->cfg.state_dir, AGENT_ID_FILE, strerror(-r));
			return r;
		}
		log_info("new agent id agent_id=%s", a->agent_id);
		return 0;
	}
	if (r < 0) {
		log_error("cannot read the agent id path=%s/%s err=%s", a->cfg.state_dir,
			AGENT_ID_FILE, strerror(-r));
		return r;
	}
	text[strcspn(text, "\r\n")] = '\0';
	if (validate_uuid("agent_id", text, a->agent_id, &err) < 0) {
		log_error("the agent id file does not hold a UUID path=%s/%s",
			a->cfg.state_dir, AGENT_ID_FILE);
		return -EINVAL;
	}
	return 0;
}

/* --host-name, else the system's host name (its first label when the
 * whole name is not acceptable, e.g. too long). */
static int
load_host_name(struct agent *a)
{
	char buf[256] = "";

	if (a->cfg.host_name) {
		snprintf(a->host_name, sizeof a->host_name, "%s", a->cfg.host_name);
		return 0;
	}
	if (gethostname(buf, sizeof buf - 1) < 0)
		buf[0] = '\0';
	if (agent_validate_host_name("host_name", buf, NULL) < 0)
		buf[strcspn(buf, ".")] = '\0';
	if (agent_validate_host_name("host_name", buf, NULL) < 0) {
		log_warn("the system host name is not usable; using localhost (set --host-name)");
		snprintf(buf, sizeof buf, "localhost");
	}
	snprintf(a->host_name, sizeof a->host_name, "%s", buf);
	return 0;
}

int
agent_identity_load(struct agent *a)
{
	int r = load_id(a);

	if (r < 0)
		return r;
	return load_host_name(a);
}
