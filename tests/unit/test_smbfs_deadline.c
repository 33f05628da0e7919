/* nqrust-smbfs late-write fencing (src/smbfs/deadline.c, journal.c):
 * the send cutoff and the TCP user timeout add up to io_deadline=, the
 * check is inclusive, only the sockets to the server's port are set, and
 * the replay journal drops entries past their cutoff and reports each
 * such file once through journal_take_lost. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "smbfs/ops_internal.h"

static void
test_cutoff(void **state)
{
	(void)state;
	assert_int_equal(smbfs_send_cutoff_ms(10000, 0), 0); /* off */
	assert_int_equal(smbfs_user_timeout_ms(4), 1000);
	assert_int_equal(smbfs_send_cutoff_ms(10000, 4), 13000);
	assert_int_equal(smbfs_send_cutoff_ms(10000, 1), 10750);
	/* Whatever W: the last send plus the kernel's bound is arrival + W. */
	for (unsigned w = 1; w <= 3600; w++) {
		int64_t c = smbfs_send_cutoff_ms(5000, w);

		assert_true(c > 5000);
		assert_int_equal(c + smbfs_user_timeout_ms(w), 5000 + (int64_t)w * 1000);
	}
	assert_false(smbfs_cutoff_passed(0, INT64_MAX));
	assert_false(smbfs_cutoff_passed(13000, 12999));
	assert_true(smbfs_cutoff_passed(13000, 13000));
	assert_true(smbfs_cutoff_passed(13000, 13001));
	assert_true(smbfs_now_ms() > 0);
}

static int
sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof v;

	assert_int_equal(getsockopt(fd, level, name, &v, &l), 0);
	return v;
}

/* A listener on 127.0.0.1 and its port. */
static int
listener(unsigned *ret_port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t l = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &l), 0);
	*ret_port = ntohs(sa.sin_port);
	return fd;
}

static int
connect_to(unsigned port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	return fd;
}

/* Only the connection to the server's port gets the bound: not its
 * accepted end, not the listener, not a connection elsewhere. */
static void
test_guard_sockets(void **state)
{
	unsigned port, other_port;
	int lfd = listener(&port), ofd = listener(&other_port);
	int cfd = connect_to(port), afd = accept(lfd, NULL, NULL);
	int xfd = connect_to(other_port);
	(void)state;

	assert_true(afd >= 0);
	assert_int_equal(sockopt(cfd, IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
	assert_int_equal(smbfs_guard_sockets(port, 1250, false), 1);
	assert_int_equal(sockopt(cfd, IPPROTO_TCP, TCP_USER_TIMEOUT), 1250);
	assert_int_equal(sockopt(cfd, SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_int_equal(sockopt(cfd, IPPROTO_TCP, TCP_KEEPIDLE), 1);
	assert_int_equal(sockopt(cfd, IPPROTO_TCP, TCP_KEEPINTVL), 1);
	assert_int_equal(sockopt(afd, IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
	assert_int_equal(sockopt(xfd, IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
	assert_int_equal(sockopt(lfd, IPPROTO_TCP, TCP_USER_TIMEOUT), 0);
	/* Idempotent: a later connection's scan sets the old one again. */
	assert_int_equal(smbfs_guard_sockets(port, 30000, false), 1);
	assert_int_equal(sockopt(cfd, IPPROTO_TCP, TCP_USER_TIMEOUT), 30000);
	assert_int_equal(sockopt(cfd, IPPROTO_TCP, TCP_KEEPIDLE), 30);
	/* A new connection made past a request's cutoff is cut, the
	 * guarded one is not. */
	{
		int nfd = connect_to(port), nafd = accept(lfd, NULL, NULL);
		char c;

		assert_int_equal(smbfs_guard_sockets(port, 30000, true), 2);
		assert_int_equal(send(nfd, "x", 1, MSG_NOSIGNAL), -1);
		assert_int_equal(errno, EPIPE);
		assert_int_equal(send(cfd, "x", 1, MSG_NOSIGNAL), 1);
		assert_int_equal(recv(afd, &c, 1, 0), 1);
		close(nafd);
		close(nfd);
	}
	close(xfd);
	close(afd);
	close(cfd);
	assert_int_equal(smbfs_guard_sockets(port, 1250, false), 0);
	close(ofd);
	close(lfd);
}

static void
journal_init(struct smbfs *fs)
{
	memset(fs, 0, sizeof *fs);
	fs->journal.tail = &fs->journal.head;
	fs->journal.cap = 1 << 20;
}

static void
add(struct smbfs *fs, const char *url, int64_t cutoff)
{
	static const char data[10] = "0123456789";

	fs->cutoff_ms = cutoff;
	assert_int_equal(journal_add_write(fs, url, data, sizeof data, 0), 0);
	fs->cutoff_ms = 0;
}

static void
test_journal_drop(void **state)
{
	struct smbfs fs;
	(void)state;

	journal_init(&fs);
	add(&fs, "smb://s/sh/a", 1000);
	add(&fs, "smb://s/sh/a", 1000);
	add(&fs, "smb://s/sh/b", 5000);
	add(&fs, "smb://s/sh/c", 0); /* no io_deadline: kept until flushed */
	assert_int_equal(fs.journal.bytes, 40);

	journal_expire(&fs, 999);
	assert_int_equal(fs.journal.bytes, 40);
	assert_false(journal_take_lost(&fs, "smb://s/sh/a"));

	journal_expire(&fs, 1000); /* a's two entries: dropped, reported once */
	assert_int_equal(fs.journal.bytes, 20);
	assert_true(journal_take_lost(&fs, "smb://s/sh/a"));
	assert_false(journal_take_lost(&fs, "smb://s/sh/a"));
	assert_false(journal_take_lost(&fs, "smb://s/sh/b"));

	/* The mark follows a rename, like the entries. */
	journal_expire(&fs, 6000);
	assert_int_equal(fs.journal.bytes, 10);
	journal_rename(&fs, "smb://s/sh/b", "smb://s/sh/d");
	assert_false(journal_take_lost(&fs, "smb://s/sh/b"));
	assert_true(journal_take_lost(&fs, "smb://s/sh/d"));

	journal_expire(&fs, INT64_MAX);
	assert_int_equal(fs.journal.bytes, 10);
	assert_false(journal_take_lost(&fs, "smb://s/sh/c"));

	/* New entries after a drop are journaled as before. */
	add(&fs, "smb://s/sh/a", 9000);
	assert_int_equal(fs.journal.bytes, 20);
	journal_expire(&fs, 9000);

	/* A file removed (or replaced) after its loss: a new file of that
	 * name did not lose anything (a retried clone unlinks its temp file
	 * and creates it again). */
	add(&fs, "smb://s/sh/e", 10000);
	journal_expire(&fs, 10000);
	journal_forget(&fs, "smb://s/sh/e");
	assert_false(journal_take_lost(&fs, "smb://s/sh/e"));
	add(&fs, "smb://s/sh/f", 11000);
	journal_expire(&fs, 11000);
	journal_clear_lost(&fs, "smb://s/sh/f");
	assert_false(journal_take_lost(&fs, "smb://s/sh/f"));
	journal_release(&fs); /* frees entries and marks (ASan checks) */
	assert_null(fs.journal.head);
	assert_null(fs.journal.lost);
	assert_int_equal(fs.journal.bytes, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cutoff),
		cmocka_unit_test(test_guard_sockets),
		cmocka_unit_test(test_journal_drop),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
