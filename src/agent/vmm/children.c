/* The VMM processes this agent started, and how each one ended.
 *
 * Every wait for a VMM goes through vmm_child_poll, under one lock, so a
 * pid is reaped exactly once and its wait status is kept until the VM
 * supervisor takes it (vmm_child_take): no zombie stays behind and no
 * second waitpid can hit an unrelated child (nq_spawn.c's helpers) that got
 * the pid afterwards. Pids we did not start (VMMs adopted after an agent
 * restart belong to init) are never waited for. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>

#include "agent/vmm/vmm.h"

#define CHILD_MAX 512

struct child {
	pid_t pid; /* 0: free slot */
	bool exited;
	int status; /* wait status, when exited */
	unsigned long seq;
};

static struct child children[CHILD_MAX];
static unsigned long next_seq;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct child *
lookup(pid_t pid)
{
	for (size_t i = 0; i < CHILD_MAX; i++)
		if (pid > 0 && children[i].pid == pid)
			return &children[i];
	return NULL;
}

void
vmm_child_add(pid_t pid)
{
	struct child *c = NULL;

	pthread_mutex_lock(&lock);
	/* A free slot, else the oldest exited one nobody took; never a live
	 * child (with CHILD_MAX > VM_MAX there is always one). */
	for (size_t i = 0; i < CHILD_MAX; i++) {
		struct child *k = &children[i];
		if (!k->pid) {
			c = k;
			break;
		}
		if (k->exited && (!c || k->seq < c->seq))
			c = k;
	}
	if (c) {
		memset(c, 0, sizeof *c);
		c->pid = pid;
		c->seq = ++next_seq;
	}
	pthread_mutex_unlock(&lock);
}

/* Under the lock: reap c if it has exited. */
static void
poll_one(struct child *c)
{
	int status;

	if (c->exited)
		return;
	pid_t r = waitpid(c->pid, &status, WNOHANG);
	if (r == c->pid) {
		c->exited = true;
		c->status = status;
	} else if (r < 0 && errno == ECHILD) {
		/* Reaped behind our back: unknown how it ended. */
		c->exited = true;
		c->status = -1;
	}
}

int
vmm_child_poll(pid_t pid)
{
	struct child *c;
	int r;

	pthread_mutex_lock(&lock);
	c = lookup(pid);
	if (c)
		poll_one(c);
	r = !c ? -ECHILD : c->exited ? 1 : 0;
	pthread_mutex_unlock(&lock);
	return r;
}

int
vmm_child_take(pid_t pid, int *ret_status)
{
	struct child *c;
	int r = -ENOENT;

	pthread_mutex_lock(&lock);
	c = lookup(pid);
	if (c) {
		poll_one(c);
		if (c->exited) {
			*ret_status = c->status;
			memset(c, 0, sizeof *c);
			r = 0;
		} else {
			r = -EBUSY;
		}
	}
	pthread_mutex_unlock(&lock);
	return r;
}

void
vmm_child_reap_all(void)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; i < CHILD_MAX; i++)
		if (children[i].pid)
			poll_one(&children[i]);
	pthread_mutex_unlock(&lock);
}
