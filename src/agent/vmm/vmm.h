/* Hypervisor drivers behind one small ops table. A driver launches one VMM
 * process per VM (detached into its own session so it outlives an agent
 * restart), configures and boots it, stops it gracefully with a deadline
 * and then kills it. The supervisor (vms.c) records the pid and the start
 * time of the process so a restarted agent can adopt it again.
 *
 * Every path in struct vmm_spec was built by the agent from validated ids;
 * drivers never see request text. */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/nq_error.h"

struct vmm_spec {
	char id[40]; /* VM uuid */
	unsigned vcpus;
	unsigned memory_mib;
	char kernel[PATH_MAX]; /* absolute, inside the image dir */
	char initrd[PATH_MAX]; /* "" when none */
	char boot_args[512];
	char rootfs[PATH_MAX + 128]; /* the raw volume file on the share */
	char run_dir[PATH_MAX];      /* <state_dir>/vms/<id>: sockets, log */
	char program[PATH_MAX];      /* firecracker or qemu-system-x86_64 */
	bool kvm;                    /* QEMU: -accel kvm instead of tcg */
};

/* The process of a running VM. starttime (field 22 of /proc/PID/stat)
 * guards against pid reuse when adopting. */
struct vmm_proc {
	pid_t pid;
	unsigned long long starttime;
};

struct vmm_ops {
	const char *name; /* "firecracker" | "qemu" */
	/* Launch, configure and boot. On failure nothing is left running. */
	int (*start)(const struct vmm_spec *s, struct vmm_proc *ret, struct nq_error *err);
	/* Stop: end the VM now, cleanly on the host side (QEMU quits on
	 * SIGTERM, flushing its block layer; Firecracker has no such call and
	 * gets CtrlAltDel). The caller waits and kills after its deadline. */
	int (*request_shutdown)(const struct vmm_spec *s, const struct vmm_proc *p);
	/* Shutdown: ask the guest OS to power off (QEMU: QMP system_powerdown,
	 * the ACPI power button; Firecracker: SendCtrlAltDel). The caller waits
	 * up to the deadline it was given, then kills. */
	int (*guest_shutdown)(const struct vmm_spec *s, const struct vmm_proc *p);
	/* Pause the guest's vCPUs (its disk writes stop with them; QEMU's
	 * stop also drains its block layer) and let them run again. Errors
	 * are vmm_failed. */
	int (*pause)(const struct vmm_spec *s, struct nq_error *err);
	int (*resume)(const struct vmm_spec *s, struct nq_error *err);
};

extern const struct vmm_ops vmm_firecracker_ops;
extern const struct vmm_ops vmm_qemu_ops;

/* QEMU's argv for s (qemu.c), pure: strings live in *ret. tsc_khz 0
 * leaves tsc_early_khz out. -EINVAL for paths QEMU cannot quote. */
#define VMM_CONSOLE_SOCK "console.sock"
struct vmm_argv {
	char mem[16], smp[16], append[1024], drive[PATH_MAX + 256];
	char chardev[2 * PATH_MAX + 128];
	char qmp[PATH_MAX + 32];
	const char *argv[36];
};
int vmm_qemu_argv(const struct vmm_spec *s, unsigned long tsc_khz, struct vmm_argv *ret);

/* QMP system_powerdown on <run_dir>/qmp.sock (qmp.c): the guest_shutdown
 * of the QEMU driver. 0 once QEMU accepted it. */
int vmm_qmp_powerdown(const struct vmm_spec *s, const struct vmm_proc *p);

/* QMP (qmp.c): "stop" (pause) or "cont" (resume) on the VM's monitor
 * socket <run_dir>/qmp.sock. */
int vmm_qmp_command(const struct vmm_spec *s, const char *command, struct nq_error *err);

/* NULL for an unknown name. */
const struct vmm_ops *vmm_find(const char *name);

/* ---- helpers shared by the drivers (proc.c) ---- */

/* Start argv through spawn_background (common/nq_spawn.h: a new session,
 * clean signal mask, stdin stdin_path (a FIFO) or /dev/null when NULL,
 * stdout and stderr appended to log_path) and remember it as our child.
 * -errno when any setup step failed; then nothing runs. */
int vmm_spawn(const char *const *argv, const char *log_path, const char *stdin_path,
	pid_t *ret_pid);
/* Firecracker's stdin (the guest's serial input): a FIFO in the run dir. */
#define VMM_CONSOLE_FIFO "console.in"
/* ---- children (children.c) ---- */

/* Remember pid as a VMM this agent started (vmm_spawn does it). */
void vmm_child_add(pid_t pid);
/* 1 when our child pid has exited (reaped now or before), 0 while it
 * runs, -ECHILD when pid is not a child we started. */
int vmm_child_poll(pid_t pid);
/* The wait status of our exited child pid, then forget it: -EBUSY while
 * it runs, -ENOENT when unknown. A status of -1: reaped by someone else. */
int vmm_child_take(pid_t pid, int *ret_status);
/* Reap every registered child that has exited. */
void vmm_child_reap_all(void);

/* How a VMM ended, for the VM object's last_exit. */
struct vmm_exit {
	bool known;      /* false: never ended while this agent watched */
	bool has_status; /* false: it was not our child (adopted) */
	int code;        /* exit code, or -1 when signal */
	int signal;      /* terminating signal, or 0 */
	long long at;    /* unix time when the agent noticed */
	bool requested;  /* the agent stopped it (stop, restart, delete) */
	/* POST /v1/vms/{id}/shutdown ended it: VMM_SHUTDOWN_GRACEFUL when the
	 * guest powered off before the deadline, _FORCED when it was killed. */
	unsigned char shutdown;
	bool fenced;     /* the agent killed it: its lease was not renewed */
	char cause[240]; /* why it failed in words (exit_cause.c), or "" */
};
enum { VMM_SHUTDOWN_NONE, VMM_SHUTDOWN_GRACEFUL, VMM_SHUTDOWN_FORCED };
/* Why the VMM in run_dir failed, from its stderr (<run_dir>/console.log):
 * "QEMU could not allocate 200000 MiB of guest memory", a disk that could
 * not be opened, KVM or TCG errors. 1 with the words in ret, 0 when
 * nothing known was found. */
int vmm_exit_cause(const char *run_dir, const char *hypervisor, unsigned memory_mib,
	char *ret, size_t sz);
/* Fill *ret from a wait status (-1: unknown). */
void vmm_exit_from_status(int status, struct vmm_exit *ret);

/* starttime of pid, -ESRCH when it is gone (or a zombie). */
int vmm_proc_starttime(pid_t pid, unsigned long long *ret);
/* True when p still names the process we started. */
bool vmm_proc_alive(const struct vmm_proc *p);
/* Wait up to timeout_ms for p to exit; true when it did. */
bool vmm_proc_wait_exit(const struct vmm_proc *p, int timeout_ms);
/* SIGTERM, a short wait, then SIGKILL; waits for the exit. */
void vmm_proc_kill(const struct vmm_proc *p);
