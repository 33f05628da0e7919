/* nqrust-smbfs command line: //SERVER/SHARE MOUNTPOINT [-o OPTS]... [-f]
 * Pure parsing and validation (no I/O besides realpath of the mount
 * point), so it can be unit-tested. */
#pragma once

#include "smbfs/credfile.h"
#include "smbfs/smbops.h"

#include <stdbool.h>

#define SMBFS_SERVER_MAX 255
#define SMBFS_SHARE_MAX 80
/* libsmbclient hands credentials over in 256-byte buffers. */
#define SMBFS_CRED_MAX 255
/* Default grace of a soft mount, seconds (timeout=). */
#define SMBFS_DEFAULT_GRACE_S 60
/* Upper bound for one request on the wire. */
#define SMBFS_WIRE_TIMEOUT_S 30
/* Default cap of the replay journal, MiB. */
#define SMBFS_DEFAULT_REPLAY_MIB 64
/* Default number of SMB connections carrying file data (conns=). */
#define SMBFS_DEFAULT_CONNS 4

/* Everything owned by the struct; release with smbfs_opts_release. */
struct smbfs_opts {
	char *unc;    /* "//server/share" as given */
	char *server; /* hostname, IPv4, or "[v6]" */
	char *share;
	char *mountpoint; /* absolute */
	char *cred_path;  /* credentials= */
	bool guest;
	struct smb_creds creds; /* filled by main from cred_path */
	char *domain;           /* domain= or the cred file's domain; NULL = default */
	bool domain_from_opt;
	unsigned port;
	/* Outage handling, kernel cifs' meaning: hard waits for the server
	 * forever; soft (the default) lets a request wait up to grace_s
	 * (timeout=) for a reconnect, then fails it with EIO. */
	bool hard;
	unsigned grace_s;
	/* nostrictsync (cifs' meaning): fsync is not sent to the server.
	 * For benchmarks and operators who accept the risk; the agent never
	 * passes it and refuses it in a backend's mount_options. */
	bool nostrictsync;
	/* io_deadline=: the life bound in seconds of every request that
	 * changes the share, retries, replays and TCP retransmissions
	 * included (deadline.c; docs/leases.md "Late writes"); applies on
	 * hard mounts too. 0 (the default) = none. */
	unsigned io_deadline_s;
	/* replay_mib=: the replay journal's cap (journal.c); 0 = none. */
	unsigned replay_mib;
	/* conns=: SMB connections carrying file data, 1..16 (pool.h); 1 =
	 * everything on the one connection of the main process. */
	unsigned conns;
	/* mount_timeout=: limit for connecting at mount time (the agent
	 * passes its probe deadline); 0 = not given. */
	unsigned mount_timeout_s;
	/* How long one request may wait for an answer on the wire: derived
	 * by smbfs_opts_parse from the three above. */
	unsigned timeout_s;
	const char *vers; /* as given, for messages ("default" if absent) */
	const char *proto_min, *proto_max;
	struct smbfs_view view;
	bool nodev, nosuid, noexec;
	double actimeo;
	bool foreground;
	bool check_only; /* --check: connect, authenticate, probe, exit */
	/* On failure: a hint naming the offending option (never its value). */
	char error[160];
};

/* Parse argv into *o (always initialised, so smbfs_opts_release is safe).
 * Returns 0 or -EINVAL with o->error set. */
int smbfs_opts_parse(int argc, char **argv, struct smbfs_opts *o);

/* After o->creds is loaded: require a username, check lengths, take the
 * cred file's domain unless domain= was given. 0 or -EINVAL. */
int smbfs_opts_check_creds(struct smbfs_opts *o);

void smbfs_opts_release(struct smbfs_opts *o);
