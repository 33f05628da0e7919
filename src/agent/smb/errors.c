/* Classify a failed mount helper run (mount.cifs or nqrust-smbfs) into the
 * contract's SMB error codes with a message an operator can act on.
 *
 * Both helpers end their stderr with "mount error(N): <strerror>", where N
 * is the errno the mount failed with; the exit status (32 for mount.cifs)
 * says nothing more. The helper's own text is never copied into the
 * message: only N and our own strerror description of it. */
#include "agent/smb/driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Only this much of stderr is examined (it is capped by spawn already). */
#define SCAN_MAX SPAWN_CAPTURE_MAX
#define ERRNO_MAX 4095

static const char marker[] = "mount error(";

/* N from the last well-formed "mount error(N)" in text, or 0. */
static int
last_mount_error(const char *text)
{
	size_t len, mlen = sizeof marker - 1;
	int found = 0;

	if (!text)
		return 0;
	len = strnlen(text, SCAN_MAX);
	for (size_t i = 0; i + mlen < len; i++) {
		const char *num = text + i + mlen;
		char *end;
		long v;

		if (memcmp(text + i, marker, mlen) != 0)
			continue;
		/* 1..4 digits then ')': strtol never sees a sign or spaces. */
		if (strspn(num, "0123456789") == 0 || strspn(num, "0123456789") > 4)
			continue;
		errno = 0;
		v = strtol(num, &end, 10);
		if (errno != 0 || *end != ')' || v <= 0 || v > ERRNO_MAX)
			continue;
		found = (int)v;
	}
	return found;
}

/* Case-insensitive substring search within the scanned prefix. */
static bool
mentions(const char *text, const char *needle)
{
	size_t len, nlen = strlen(needle);

	if (!text)
		return false;
	len = strnlen(text, SCAN_MAX);
	for (size_t i = 0; i + nlen <= len; i++)
		if (strncasecmp(text + i, needle, nlen) == 0)
			return true;
	return false;
}

static const char *
errno_text(int n)
{
	const char *d = n > 0 ? strerrordesc_np(n) : NULL;

	return d ? d : "unknown error";
}

enum smb_class {
	C_FAILED,
	C_AUTH,
	C_DENIED,
	C_SHARE,
	C_BAD_OPTION,
	C_UNREACHABLE,
	C_RESOLVE,
	C_TIMEOUT,
	C_CRED,
	C_READONLY,
	C_NOCIFS,
};

static enum smb_class
class_of_errno(int n)
{
	switch (n) {
	case EACCES:
		return C_AUTH;
	case ENOENT:
	case ENXIO:
		return C_SHARE;
	case EINVAL:
	case EOPNOTSUPP:
	case EPROTONOSUPPORT:
	case EPROTO:
		return C_BAD_OPTION;
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ECONNRESET:
		return C_UNREACHABLE;
	case ETIMEDOUT:
		return C_TIMEOUT;
	case ENOKEY:
		return C_CRED;
	case EROFS:
		return C_READONLY;
	case ENODEV:
		return C_NOCIFS;
	default:
		return C_FAILED;
	}
}

static enum smb_class
classify(const struct spawn_result *r, int n)
{
	const char *text = r ? r->err : NULL;
	enum smb_class c = class_of_errno(n);

	if (r && r->timed_out)
		return C_TIMEOUT;
	/* A missing credentials file surfaces as ENOENT (or no number) but
	 * is not a missing share. */
	if ((n == 0 || n == ENOENT) &&
		(mentions(text, "credentials file") || mentions(text, "credential file")))
		return C_CRED;
	/* nqrust-smbfs: the server accepted the credentials (its share list
	 * opened) but the share refused the user. */
	if (n == EPERM && mentions(text, "authenticated"))
		return C_DENIED;
	if (c != C_FAILED)
		return c;
	if (n == 0 &&
		(mentions(text, "could not resolve") || mentions(text, "unable to resolve") ||
			mentions(text, "name or service not known")))
		return C_RESOLVE;
	if (n == 0 && mentions(text, "cifs filesystem not supported"))
		return C_NOCIFS;
	return C_FAILED;
}

int
smb_classify_mount_error(const struct smb_mount_spec *s, const struct spawn_result *r,
	struct nq_error *err)
{
	char unc[NQ_SERVER_MAX + NQ_SHARE_MAX + 4];
	int n = last_mount_error(r ? r->err : NULL);
	bool guest = s && s->username[0] == '\0';

	if (!s || smb_unc(s, unc, sizeof unc) < 0)
		memcpy(unc, "the share", sizeof "the share");

	switch (classify(r, n)) {
	case C_AUTH:
		if (guest)
			nq_error_set(err, "smb_auth_failed", NULL,
				"the SMB server %s refused guest access (error %d); set a username and password for this backend",
				unc, n);
		else
			nq_error_set(err, "smb_auth_failed", NULL,
				"the SMB server %s rejected the username or password (error %d); check the credentials and re-save the password",
				unc, n);
		break;
	case C_DENIED:
		nq_error_set(err, "smb_access_denied", NULL,
			"the SMB server %s accepted the login, but the share refuses this user (error %d); grant the user access to the share (valid users, share permissions) or use an account that has it",
			unc, n);
		break;
	case C_SHARE:
		nq_error_set(err, "smb_share_not_found", NULL,
			"the share %s does not exist or the path is not found on the server (error %d); check the share name and subdir",
			unc, n);
		break;
	case C_BAD_OPTION:
		nq_error_set(err, "smb_bad_option", NULL,
			"mounting %s failed because an option or the SMB version was not accepted (error %d: %s); check smb_version and mount_options",
			unc, n, errno_text(n));
		break;
	case C_UNREACHABLE:
		nq_error_set(err, "smb_unreachable", NULL,
			"cannot reach the SMB server for %s (error %d: %s); check the server address, port and firewall",
			unc, n, errno_text(n));
		break;
	case C_RESOLVE:
		nq_error_set(err, "smb_unreachable", NULL,
			"cannot resolve the server name of %s; check the server address and DNS",
			unc);
		break;
	case C_TIMEOUT:
		nq_error_set(err, "smb_timeout", NULL,
			"the SMB server for %s did not answer in time; check that the server is up and reachable",
			unc);
		break;
	case C_CRED:
		nq_error_set(err, "smb_cred_missing", NULL,
			"the credentials file for this backend is missing; re-save the backend's password");
		break;
	case C_READONLY:
		nq_error_set(err, "smb_not_writable", NULL,
			"the share %s is read-only (error %d); grant write access to the share for this user",
			unc, n);
		break;
	case C_NOCIFS:
		nq_error_set(err, "cifs_unavailable", NULL,
			"this host's kernel has no CIFS support (mount error %d); install/load the cifs module or use mount_driver=fuse",
			n ? n : ENODEV);
		break;
	case C_FAILED:
		if (n > 0)
			nq_error_set(err, "smb_mount_failed", NULL,
				"mounting %s failed (error %d: %s); see the agent log for details",
				unc, n, errno_text(n));
		else if (r && r->signaled)
			nq_error_set(err, "smb_mount_failed", NULL,
				"mounting %s failed: the mount helper was killed by signal %d",
				unc, r->term_signal);
		else
			nq_error_set(err, "smb_mount_failed", NULL,
				"mounting %s failed (mount helper exit status %d); see the agent log for details",
				unc, r ? r->exit_code : -1);
		break;
	}
	return n;
}

bool
smb_conn_broken(int r)
{
	switch (-r) {
	case EIO:      /* FUSE bridge: the SMB session failed */
	case ENOTCONN: /* FUSE bridge gone, or the session dropped */
	case ECONNRESET:
	case ECONNABORTED:
	case ECONNREFUSED:
	case EPIPE:
	case ETIMEDOUT:
	case EHOSTDOWN:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ENETDOWN:
	case ESHUTDOWN:
		return true;
	default:
		return false;
	}
}
