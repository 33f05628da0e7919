/* QEMU driver argv (golden file, byte for byte), KVM switch, refusal of
 * paths QEMU's option syntax cannot carry, the driver table, and pause /
 * resume over QMP against a fake monitor. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "agent/vmm/vmm.h"

#define VM_ID "0b7e2a5c-1d2f-4c11-9a57-3f6b8a9e0c41"

static void
make_spec(struct vmm_spec *s)
{
	memset(s, 0, sizeof *s);
	snprintf(s->id, sizeof s->id, "%s", VM_ID);
	s->vcpus = 2;
	s->memory_mib = 256;
	snprintf(s->kernel, sizeof s->kernel, "/var/lib/nqrust/images/demo.vmlinuz");
	snprintf(s->initrd, sizeof s->initrd, "/var/lib/nqrust/images/demo.initrd");
	snprintf(s->boot_args, sizeof s->boot_args, "console=ttyS0 panic=-1 quiet");
	snprintf(s->rootfs, sizeof s->rootfs,
		"/var/lib/nqrust/smb/127.0.0.1:vmstore/"
		"smb-5c1a0f2e-7b3d-4e8f-a1c2-9d0e6b4f3a21.raw");
	snprintf(s->run_dir, sizeof s->run_dir, "/var/lib/nqrust/agent/vms/%s", VM_ID);
	snprintf(s->program, sizeof s->program, "/usr/bin/qemu-system-x86_64");
}

static char *
joined(const struct vmm_argv *v)
{
	static char got[65536];
	size_t len = 0;

	got[0] = '\0';
	for (const char *const *p = v->argv; *p; p++) {
		assert_null(strchr(*p, '\n'));
		len += (size_t)snprintf(got + len, sizeof got - len, "%s\n", *p);
		assert_true(len < sizeof got);
	}
	return got;
}

static void
test_golden(void **state)
{
	struct vmm_spec s;
	struct vmm_argv *v = calloc(1, sizeof *v);
	char path[512], want[65536];
	size_t n;
	FILE *f;

	(void)state;
	make_spec(&s);
	assert_int_equal(vmm_qemu_argv(&s, 2400000, v), 0);
	snprintf(path, sizeof path, "%s/qemu_microvm.argv", GOLDEN_DIR);
	f = fopen(path, "re");
	assert_non_null(f);
	n = fread(want, 1, sizeof want - 1, f);
	fclose(f);
	want[n] = '\0';
	assert_string_equal(joined(v), want);
	free(v);
}

static void
test_kvm_no_initrd_no_tsc(void **state)
{
	struct vmm_spec s;
	struct vmm_argv *v = calloc(1, sizeof *v);
	const char *got;

	(void)state;
	make_spec(&s);
	s.kvm = true;
	s.initrd[0] = '\0';
	assert_int_equal(vmm_qemu_argv(&s, 0, v), 0);
	got = joined(v);
	assert_non_null(strstr(got, "-accel\nkvm\n"));
	assert_null(strstr(got, "-initrd"));
	assert_null(strstr(got, "tsc_early_khz"));
	assert_non_null(strstr(got, "-append\nconsole=ttyS0 panic=-1 quiet\n"));
	free(v);
}

static void
test_comma_refused(void **state)
{
	struct vmm_spec s;
	struct vmm_argv *v = calloc(1, sizeof *v);

	(void)state;
	make_spec(&s);
	snprintf(s.rootfs, sizeof s.rootfs, "/mnt/a,b/smb-x.raw");
	assert_int_equal(vmm_qemu_argv(&s, 0, v), -EINVAL);
	free(v);
}

static void
test_driver_table(void **state)
{
	(void)state;
	assert_ptr_equal(vmm_find("firecracker"), &vmm_firecracker_ops);
	assert_ptr_equal(vmm_find("qemu"), &vmm_qemu_ops);
	assert_null(vmm_find("kvmtool"));
	assert_null(vmm_find(""));
}

static void
test_proc_gone(void **state)
{
	struct vmm_proc p = { .pid = 0, .starttime = 1 };
	unsigned long long st;

	(void)state;
	assert_false(vmm_proc_alive(&p));
	/* Our own process: alive with its own start time, not with another. */
	assert_int_equal(vmm_proc_starttime(getpid(), &st), 0);
	p.pid = getpid();
	p.starttime = st;
	assert_true(vmm_proc_alive(&p));
	p.starttime = st + 1;
	assert_false(vmm_proc_alive(&p));
}

/* A fake QEMU monitor on <dir>/qmp.sock: greets, answers
 * qmp_capabilities, then answers the next command with an event line
 * first and then `answer`; what the client sent lands in got. */
struct fake_qmp {
	char dir[64];
	int lfd;
	const char *answer;
	char got[1024];
	pthread_t t;
};

static void
send_line(int fd, const char *s)
{
	assert_int_equal(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

static void
read_line(int fd, char *buf, size_t sz)
{
	size_t n = 0;

	while (n + 1 < sz && recv(fd, buf + n, 1, 0) == 1 && buf[n] != '\n')
		n++;
	buf[n] = '\0';
}

static void
append(char *buf, size_t sz, const char *s)
{
	size_t n = strlen(buf);

	snprintf(buf + n, sz - n, "%s", s);
}

static void *
fake_qmp_main(void *arg)
{
	struct fake_qmp *f = arg;
	char line[256];
	int fd = accept(f->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	send_line(fd, "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n");
	read_line(fd, line, sizeof line);
	append(f->got, sizeof f->got, line);
	send_line(fd, "{\"return\": {}}\r\n");
	read_line(fd, line, sizeof line);
	append(f->got, sizeof f->got, line);
	send_line(fd, "{\"timestamp\": {}, \"event\": \"STOP\"}\r\n");
	send_line(fd, f->answer);
	close(fd);
	return NULL;
}

static void
fake_qmp_start(struct fake_qmp *f, const char *answer, struct vmm_spec *s)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	memset(f, 0, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/nqrust-qmp-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s/qmp.sock", f->dir);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(listen(f->lfd, 1), 0);
	f->answer = answer;
	assert_int_equal(pthread_create(&f->t, NULL, fake_qmp_main, f), 0);
	make_spec(s);
	snprintf(s->run_dir, sizeof s->run_dir, "%s", f->dir);
}

static void
fake_qmp_stop(struct fake_qmp *f)
{
	char path[128];

	pthread_join(f->t, NULL);
	close(f->lfd);
	snprintf(path, sizeof path, "%s/qmp.sock", f->dir);
	unlink(path);
	rmdir(f->dir);
}

static void
test_qmp_pause_resume(void **state)
{
	struct fake_qmp f;
	struct vmm_spec s;
	struct nq_error err = { 0 };

	(void)state;
	fake_qmp_start(&f, "{\"return\": {}}\r\n", &s);
	assert_int_equal(vmm_qemu_ops.pause(&s, &err), 0);
	fake_qmp_stop(&f);
	assert_string_equal(f.got,
		"{\"execute\": \"qmp_capabilities\"}{\"execute\": \"stop\"}");

	fake_qmp_start(&f, "{\"return\": {}}\r\n", &s);
	assert_int_equal(vmm_qemu_ops.resume(&s, &err), 0);
	fake_qmp_stop(&f);
	assert_string_equal(f.got,
		"{\"execute\": \"qmp_capabilities\"}{\"execute\": \"cont\"}");
}

static void
test_qmp_errors(void **state)
{
	struct fake_qmp f;
	struct vmm_spec s;
	struct nq_error err = { 0 };

	(void)state;
	fake_qmp_start(&f,
		"{\"error\": {\"class\": \"GenericError\", \"desc\": \"cannot stop\"}}\r\n",
		&s);
	assert_true(vmm_qemu_ops.pause(&s, &err) < 0);
	fake_qmp_stop(&f);
	assert_string_equal(err.code, "vmm_failed");
	assert_non_null(strstr(err.message, "cannot stop"));

	/* No monitor (a QEMU started without -qmp): vmm_failed, not a hang. */
	memset(&err, 0, sizeof err);
	make_spec(&s);
	snprintf(s.run_dir, sizeof s.run_dir, "/nonexistent-nqrust-dir");
	assert_true(vmm_qemu_ops.resume(&s, &err) < 0);
	assert_string_equal(err.code, "vmm_failed");
}

/* The cause in words from a VMM's stderr (exit_cause.c). */
static const char *
cause_of(const char *stderr_text, unsigned mib)
{
	static char out[240];
	char dir[] = "/tmp/nqrust-cause-XXXXXX", path[64];
	FILE *f;
	int r;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/console.log", dir);
	f = fopen(path, "we");
	assert_non_null(f);
	fputs(stderr_text, f);
	fclose(f);
	r = vmm_exit_cause(dir, "qemu", mib, out, sizeof out);
	unlink(path);
	rmdir(dir);
	return r ? out : NULL;
}

static void
test_exit_cause(void **state)
{
	(void)state;
	assert_string_equal(
		cause_of("qemu-system-x86_64: cannot set up guest memory "
			 "'microvm.ram': Cannot allocate memory\n",
			200000),
		"QEMU could not allocate 200000 MiB of guest memory");
	assert_string_equal(
		cause_of("qemu-system-x86_64: -drive id=d0,file=/x/y.raw: Could "
			 "not open '/x/y.raw': No such file or directory\n",
			256),
		"QEMU could not open the disk or kernel: -drive id=d0,file=/x/y.raw: Could not "
		"open '/x/y.raw': No such file or directory");
	assert_string_equal(
		cause_of("qemu-system-x86_64: failed to initialize kvm: Permission "
			 "denied\n",
			256),
		"QEMU could not use KVM: failed to initialize kvm: Permission denied");
	assert_null(cause_of("all is well\n", 256));
	assert_null(cause_of("", 256));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden),
		cmocka_unit_test(test_exit_cause),
		cmocka_unit_test(test_kvm_no_initrd_no_tsc),
		cmocka_unit_test(test_comma_refused),
		cmocka_unit_test(test_driver_table),
		cmocka_unit_test(test_proc_gone),
		cmocka_unit_test(test_qmp_pause_resume),
		cmocka_unit_test(test_qmp_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
