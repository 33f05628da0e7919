/* QEMU driver: qemu-system-x86_64 -M microvm, the raw volume file as a
 * virtio-blk device. The serial port is a unix socket chardev
 * <run_dir>/console.sock (the agent's console pump stays connected: it
 * drains the output and carries input) whose output QEMU also writes to
 * <run_dir>/serial.log (anew at each start); QEMU's own stderr goes to <run_dir>/console.log.
 * KVM when configured, TCG otherwise (TESTING.md: KVM hangs on PVM hosts).
 * -no-reboot: a guest poweroff or reboot ends the process. Stop is SIGTERM
 * (QEMU ends the VM at once, a power-off for the guest, and flushes its
 * block layer); shutdown is QMP system_powerdown on <run_dir>/qmp.sock
 * (microvm's ACPI power button: the guest must act on it); the supervisor
 * kills after the deadline. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/macro.h"
#include "agent/vmm/vmm.h"

/* tsc_early_khz from the host's "cpu MHz": without it microvm can hang in
 * TSC calibration under TCG. */
static unsigned long
host_tsc_khz(void)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "re");
	unsigned long khz = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f)) {
		double mhz;
		if (sscanf(line, "cpu MHz : %lf", &mhz) == 1 ||
			sscanf(line, "cpu MHz\t: %lf", &mhz) == 1) {
			khz = (unsigned long)(mhz * 1000.0);
			break;
		}
	}
	fclose(f);
	return khz;
}

int
vmm_qemu_argv(const struct vmm_spec *s, unsigned long tsc_khz, struct vmm_argv *ret)
{
	struct vmm_argv *v = ret;
	size_t n = 0;

	/* The drive option string is comma-separated: a comma in the path
	 * would need doubling; the agent's paths never hold one. */
	if (strchr(s->rootfs, ',') || strchr(s->run_dir, ','))
		return -EINVAL;
	/* sun_path holds 108 bytes with its NUL. */
	if (strlen(s->run_dir) + sizeof("/" VMM_CONSOLE_SOCK) > 108)
		return -ENAMETOOLONG;
	snprintf(v->mem, sizeof v->mem, "%u", s->memory_mib);
	snprintf(v->smp, sizeof v->smp, "%u", s->vcpus);
	if (tsc_khz)
		snprintf(v->append, sizeof v->append, "%s tsc_early_khz=%lu", s->boot_args,
			tsc_khz);
	else
		snprintf(v->append, sizeof v->append, "%s", s->boot_args);
	/* cache=writeback (QEMU's default, said out loud): a guest flush is
	 * an fdatasync of the file, never cache=unsafe. */
	snprintf(v->drive, sizeof v->drive,
		"id=d0,file=%s,format=raw,if=none,cache=writeback", s->rootfs);
	snprintf(v->chardev, sizeof v->chardev,
		"socket,id=s0,path=%s/" VMM_CONSOLE_SOCK
		",server=on,wait=off,logfile=%s/serial.log",
		s->run_dir, s->run_dir);
	/* The monitor: shutdown, pause and resume (snapshots of a running VM). */
	snprintf(v->qmp, sizeof v->qmp, "unix:%s/qmp.sock,server=on,wait=off", s->run_dir);

	v->argv[n++] = s->program;
	v->argv[n++] = "-accel";
	v->argv[n++] = s->kvm ? "kvm" : "tcg";
	v->argv[n++] = "-M";
	v->argv[n++] = "microvm";
	v->argv[n++] = "-m";
	v->argv[n++] = v->mem;
	v->argv[n++] = "-smp";
	v->argv[n++] = v->smp;
	v->argv[n++] = "-nodefaults";
	v->argv[n++] = "-display";
	v->argv[n++] = "none";
	v->argv[n++] = "-chardev";
	v->argv[n++] = v->chardev;
	v->argv[n++] = "-serial";
	v->argv[n++] = "chardev:s0";
	v->argv[n++] = "-no-reboot";
	v->argv[n++] = "-kernel";
	v->argv[n++] = s->kernel;
	if (s->initrd[0]) {
		v->argv[n++] = "-initrd";
		v->argv[n++] = s->initrd;
	}
	v->argv[n++] = "-append";
	v->argv[n++] = v->append;
	v->argv[n++] = "-drive";
	v->argv[n++] = v->drive;
	v->argv[n++] = "-device";
	v->argv[n++] = "virtio-blk-device,drive=d0";
	/* A unix socket path longer than sun_path would make QEMU refuse to
	 * start: then the VM has no QMP and a shutdown ends in a power-off. */
	if (strlen(s->run_dir) + sizeof "/qmp.sock" <=
		sizeof(struct sockaddr_un){ 0 }.sun_path) {
		v->argv[n++] = "-qmp";
		v->argv[n++] = v->qmp;
	}
	v->argv[n] = NULL;
	return 0;
}

/* QEMU ended during its start: the cause in words (from its stderr). */
static int
qemu_failed(const struct vmm_spec *s, struct nq_error *err)
{
	char cause[240];

	if (!vmm_exit_cause(s->run_dir, "qemu", s->memory_mib, cause, sizeof cause))
		snprintf(cause, sizeof cause, "QEMU exited at once without saying why");
	return nq_error_setr(err, -ECHILD, "vmm_failed", NULL, "%s", cause);
}

static int
qemu_start(const struct vmm_spec *s, struct vmm_proc *ret, struct nq_error *err)
{
	char logp[PATH_MAX + 16];
	struct vmm_argv *v = calloc(1, sizeof *v);
	struct vmm_proc p = { 0 };
	int r;

	if (!v)
		return nq_error_setr(err, -ENOMEM, "internal_error", NULL, "out of memory");
	if (vmm_qemu_argv(s, host_tsc_khz(), v) < 0) {
		free(v);
		return nq_error_set(err, "invalid_field", NULL,
			"paths with commas are not supported by the qemu driver");
	}
	snprintf(logp, sizeof logp, "%s/console.log", s->run_dir);
	r = vmm_spawn(v->argv, logp, NULL, &p.pid);
	free(v);
	if (r < 0)
		return nq_error_setr(err, r, "vmm_failed", NULL, "cannot start %s: %s",
			s->program, strerror(-r));
	/* Invalid options make QEMU exit within moments: report that here
	 * instead of as a VM that stopped by itself. */
	if (vmm_proc_starttime(p.pid, &p.starttime) < 0) {
		(void)vmm_proc_wait_exit(&p, 0);
		return qemu_failed(s, err);
	}
	if (vmm_proc_wait_exit(&p, 300))
		return qemu_failed(s, err);
	*ret = p;
	return 0;
}

static int
qemu_request_shutdown(const struct vmm_spec *s, const struct vmm_proc *p)
{
	(void)s;
	if (!vmm_proc_alive(p))
		return 0;
	return kill(p->pid, SIGTERM) < 0 ? negerrno() : 0;
}

static int
qemu_pause(const struct vmm_spec *s, struct nq_error *err)
{
	return vmm_qmp_command(s, "stop", err);
}

static int
qemu_resume(const struct vmm_spec *s, struct nq_error *err)
{
	return vmm_qmp_command(s, "cont", err);
}

const struct vmm_ops vmm_qemu_ops = {
	.name = "qemu",
	.start = qemu_start,
	.request_shutdown = qemu_request_shutdown,
	.guest_shutdown = vmm_qmp_powerdown,
	.pause = qemu_pause,
	.resume = qemu_resume,
};
