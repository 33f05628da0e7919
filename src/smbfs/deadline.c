/* Late-write fencing for nqrust-smbfs: io_deadline= (docs/leases.md,
 * "Late writes").
 *
 * A host whose agent fenced a VM (killed its VMM because the lease on the
 * share could not be renewed) must not write to the VM's disk after the
 * lease expires: another host may own it by then. A write the VMM issued
 * before it died can outlive it in three places: our retry loop, our
 * replay journal, and the kernel's TCP send queue (retransmitted when a
 * partition heals, applied by smbd if its session is still alive). With
 * io_deadline=W every request that changes the share gets a life bound:
 * it may start a send until its cutoff = arrival + W - U, and the TCP
 * sockets to the server get TCP_USER_TIMEOUT = U, so the kernel drops
 * whatever is unacknowledged U after it was sent and resets the
 * connection instead of retransmitting later. Nothing of the request
 * exists on this host after arrival + W. U = W/4 splits the bound
 * between riding through a short outage or a wait for the connection
 * (until the cutoff, 3/4 of W) and a lossy link (U without any
 * acknowledgement; a LAN acknowledges in well under a millisecond, and
 * Linux clamps the retransmission timer to U, so one lost segment is
 * still sent again in time). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "smbfs/ops_internal.h"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>

int64_t
smbfs_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

unsigned
smbfs_user_timeout_ms(unsigned deadline_s)
{
	return deadline_s * 250u;
}

int64_t
smbfs_send_cutoff_ms(int64_t arrival_ms, unsigned deadline_s)
{
	if (deadline_s == 0)
		return 0;
	return arrival_ms + (int64_t)deadline_s * 1000 - smbfs_user_timeout_ms(deadline_s);
}

bool
smbfs_cutoff_passed(int64_t cutoff_ms, int64_t now_ms)
{
	return cutoff_ms > 0 && now_ms >= cutoff_ms;
}

bool
smbfs_is_server_socket(int fd, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	int type = 0;
	socklen_t tlen = sizeof type;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM)
		return false;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&ss)->sin_port) == port;
	if (ss.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port) == port;
	return false;
}

/* Keepalive probes an idle connection from U/1000 s on, so a dead link is
 * found before the next write; TCP_USER_TIMEOUT also ends the probing. */
static int
guard_socket(int fd, unsigned user_timeout_ms)
{
	int ut = (int)user_timeout_ms, one = 1, intvl = 1, cnt = 3;
	int idle = ut / 1000 > 0 ? ut / 1000 : 1;

	if (setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, sizeof ut) < 0 ||
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one) < 0 ||
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) < 0 ||
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl) < 0 ||
		setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt) < 0)
		return -errno;
	return 0;
}

static bool
is_guarded(int fd, unsigned user_timeout_ms)
{
	int ut = 0;
	socklen_t len = sizeof ut;

	return getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ut, &len) == 0 &&
	       ut == (int)user_timeout_ms;
}

/* libsmbclient keeps its sockets to itself, and Samba's "socket options"
 * knows no TCP_USER_TIMEOUT (lib/util/util_net.c): find them in our fd
 * table. Called after every new connection (retry.c), before it carries
 * any file data. */
int
smbfs_guard_sockets(unsigned port, unsigned user_timeout_ms, bool sever_new)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long fd = strtol(de->d_name, &end, 10);

		if (*end || end == de->d_name || fd == dirfd(d) || fd < 0)
			continue;
		if (!smbfs_is_server_socket((int)fd, port))
			continue;
		if (sever_new && !is_guarded((int)fd, user_timeout_ms))
			shutdown((int)fd, SHUT_RDWR);
		if (guard_socket((int)fd, user_timeout_ms) < 0) {
			syslog(LOG_ERR, "cannot set TCP_USER_TIMEOUT on the connection to "
					"the server: %m");
			continue;
		}
		n++;
	}
	closedir(d);
	return n;
}
