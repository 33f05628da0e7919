/* VM supervision: records, VMM processes, adoption after restart. All
 * operations hold the table lock: VM operations are rare and short, and
 * one lock keeps pin/unpin of the backend mounts exact. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/fsutil.h"
#include "../common/log.h"
#include "../common/macro.h"
#include "vmm.h"
#include "vms.h"

#define VM_STOP_DEADLINE_MS 15000
#define VM_RECORD_MAX 8192

struct vm {
	struct vm_create c;
	struct vmm_proc proc;
	bool pinned; /* backend mount pinned while the VMM runs */
	char rootfs[PATH_MAX + 128];
};

struct vm_table {
	pthread_mutex_t lock;
	struct vm *v[VM_MAX];
	int dirfd; /* <state_dir>/vms */
};

int
vm_table_new(struct vm_table **ret)
{
	struct vm_table *t = calloc(1, sizeof *t);

	if (!t)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->dirfd = -1;
	*ret = t;
	return 0;
}

void
vm_table_free(struct vm_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < VM_MAX; i++)
		free(t->v[i]);
	closep(&t->dirfd);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

const char *
vms_default_hypervisor(const struct agent *a)
{
	if (a->cfg.hypervisor && *a->cfg.hypervisor && strcmp(a->cfg.hypervisor, "auto"))
		return a->cfg.hypervisor;
	return access(a->cfg.firecracker_path, X_OK) == 0 ? "firecracker" : "qemu";
}

static struct vm *
find(struct vm_table *t, const char *id)
{
	for (size_t i = 0; i < VM_MAX; i++)
		if (t->v[i] && !strcmp(t->v[i]->c.id, id))
			return t->v[i];
	return NULL;
}

static bool
running(struct vm *vm)
{
	return vmm_proc_alive(&vm->proc);
}

/* rootfs path: pin the backend's mount (remounting it if needed). */
static int
pin_rootfs(struct agent *a, struct vm *vm, struct nq_error *err)
{
	int r = volumes_pin_rootfs(a, vm->c.backend_kind, vm->c.backend_id, vm->c.volume_id,
		vm->rootfs, sizeof vm->rootfs, err);

	if (r >= 0)
		vm->pinned = true;
	return r;
}

static void
unpin_rootfs(struct agent *a, struct vm *vm)
{
	if (vm->pinned)
		volumes_unpin(a, vm->c.backend_kind, vm->c.backend_id);
	vm->pinned = false;
}

/* A VMM that exited by itself (guest poweroff) releases its mount. */
static void
settle(struct agent *a, struct vm *vm)
{
	if (!running(vm))
		unpin_rootfs(a, vm);
}

static json_t *
vm_json(struct agent *a, struct vm *vm)
{
	bool up;

	settle(a, vm);
	up = running(vm);
	return json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s, s:o}",
		"id", vm->c.id, "backend_kind", volume_kind_name(vm->c.backend_kind),
		"backend_id", vm->c.backend_id,
		"volume_id", vm->c.volume_id, "vcpus", (int)vm->c.vcpus,
		"memory_mib", (int)vm->c.memory_mib, "kernel", vm->c.kernel,
		"initrd", vm->c.initrd, "hypervisor", vm->c.hypervisor,
		"rootfs", vm->rootfs, "state", up ? "running" : "stopped",
		"pid", up ? json_integer(vm->proc.pid) : json_null());
}

static int
save(struct agent *a, struct vm *vm)
{
	char name[NQ_UUID_LEN + 8];
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:I, s:I}",
		"id", vm->c.id, "backend_kind", volume_kind_name(vm->c.backend_kind),
		"backend_id", vm->c.backend_id,
		"volume_id", vm->c.volume_id, "vcpus", (int)vm->c.vcpus,
		"memory_mib", (int)vm->c.memory_mib, "kernel", vm->c.kernel,
		"initrd", vm->c.initrd, "boot_args", vm->c.boot_args,
		"hypervisor", vm->c.hypervisor, "pid", (json_int_t)vm->proc.pid,
		"starttime", (json_int_t)vm->proc.starttime);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int r;

	json_decref(j);
	if (!text)
		return -ENOMEM;
	snprintf(name, sizeof name, "%s.json", vm->c.id);
	r = fs_write_atomic(a->vms->dirfd, name, text, strlen(text), 0600);
	free(text);
	return r;
}

static void
copy_str(char *dst, size_t sz, json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));
	snprintf(dst, sz, "%s", s ? s : "");
}

/* Records are written by us, but re-validate: a corrupt file must not
 * make the agent build a path from it. */
static int
load_one(struct agent *a, const char *file, struct vm **ret)
{
	_cleanup_free_ char *text = NULL;
	char id[NQ_UUID_LEN + 1];
	struct vm *vm;
	json_t *j;
	int r;

	r = fs_read_file(a->vms->dirfd, file, VM_RECORD_MAX, &text, NULL);
	if (r < 0)
		return r;
	j = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return -EINVAL;
	}
	vm = calloc(1, sizeof *vm);
	if (!vm) {
		json_decref(j);
		return -ENOMEM;
	}
	copy_str(id, sizeof id, j, "id");
	r = validate_uuid("id", id, vm->c.id, NULL);
	copy_str(id, sizeof id, j, "backend_id");
	if (r >= 0)
		r = validate_backend_id("backend_id", id, vm->c.backend_id, NULL);
	/* Records from before localfile VMs have no kind: smb. */
	if (r >= 0)
		r = volume_kind_parse(json_string_value(json_object_get(j, "backend_kind")),
			&vm->c.backend_kind);
	copy_str(id, sizeof id, j, "volume_id");
	if (r >= 0)
		r = validate_uuid("volume_id", id, vm->c.volume_id, NULL);
	copy_str(vm->c.kernel, sizeof vm->c.kernel, j, "kernel");
	copy_str(vm->c.initrd, sizeof vm->c.initrd, j, "initrd");
	copy_str(vm->c.boot_args, sizeof vm->c.boot_args, j, "boot_args");
	copy_str(vm->c.hypervisor, sizeof vm->c.hypervisor, j, "hypervisor");
	vm->c.vcpus = (unsigned)json_integer_value(json_object_get(j, "vcpus"));
	vm->c.memory_mib = (unsigned)json_integer_value(json_object_get(j, "memory_mib"));
	vm->proc.pid = (pid_t)json_integer_value(json_object_get(j, "pid"));
	vm->proc.starttime =
		(unsigned long long)json_integer_value(json_object_get(j, "starttime"));
	json_decref(j);
	if (r >= 0 && (validate_image_name("kernel", vm->c.kernel, NULL) < 0 ||
		       (vm->c.initrd[0] &&
			validate_image_name("initrd", vm->c.initrd, NULL) < 0) ||
		       !vmm_find(vm->c.hypervisor)))
		r = -EINVAL;
	if (r < 0) {
		free(vm);
		return -EINVAL;
	}
	*ret = vm;
	return 0;
}

int
vms_restore(struct agent *a)
{
	struct vm_table *t = a->vms;
	struct dirent *de;
	size_t k = 0;
	DIR *d;
	int r;

	t->dirfd = fs_mkdir_beneath(a->state_dirfd, "vms", 0700);
	if (t->dirfd < 0)
		return t->dirfd;
	r = fs_opendir(t->dirfd, &d);
	if (r < 0)
		return r;
	while ((de = readdir(d)) && k < VM_MAX) {
		size_t l = strlen(de->d_name);
		struct vm *vm;
		if (l < 6 || strcmp(de->d_name + l - 5, ".json") || de->d_name[0] == '.')
			continue;
		if (load_one(a, de->d_name, &vm) < 0) {
			log_warn("ignoring unreadable VM record file=%s", de->d_name);
			continue;
		}
		if (vmm_proc_alive(&vm->proc)) {
			struct nq_error err = { 0 };
			if (pin_rootfs(a, vm, &err) < 0)
				log_warn("running VM without its mount id=%s err=%s", vm->c.id,
					err.message);
			log_info("adopted running VM id=%s pid=%d hypervisor=%s", vm->c.id,
				(int)vm->proc.pid, vm->c.hypervisor);
		} else {
			vm->proc.pid = 0;
		}
		t->v[k++] = vm;
	}
	closedir(d);
	return 0;
}

static void
fill_spec(struct agent *a, struct vm *vm, struct vmm_spec *s)
{
	bool fc = !strcmp(vm->c.hypervisor, "firecracker");

	memset(s, 0, sizeof *s);
	snprintf(s->id, sizeof s->id, "%s", vm->c.id);
	s->vcpus = vm->c.vcpus;
	s->memory_mib = vm->c.memory_mib;
	snprintf(s->kernel, sizeof s->kernel, "%s/%s", a->cfg.image_dir, vm->c.kernel);
	if (vm->c.initrd[0])
		snprintf(s->initrd, sizeof s->initrd, "%s/%s", a->cfg.image_dir, vm->c.initrd);
	if (vm->c.boot_args[0])
		snprintf(s->boot_args, sizeof s->boot_args, "%s", vm->c.boot_args);
	else
		snprintf(s->boot_args, sizeof s->boot_args, "%s", fc
			? "console=ttyS0 reboot=k panic=1 pci=off"
			: "console=ttyS0 panic=-1 quiet");
	snprintf(s->rootfs, sizeof s->rootfs, "%s", vm->rootfs);
	snprintf(s->run_dir, sizeof s->run_dir, "%s/vms/%s", a->cfg.state_dir, vm->c.id);
	snprintf(s->program, sizeof s->program, "%s",
		fc ? a->cfg.firecracker_path : a->cfg.qemu_path);
	s->kvm = a->cfg.qemu_kvm;
}

static int
do_start(struct agent *a, struct vm *vm, struct nq_error *err)
{
	const struct vmm_ops *ops = vmm_find(vm->c.hypervisor);
	struct vmm_spec spec;
	struct vmm_proc p;
	char rel[NQ_UUID_LEN + 8];
	int r, fd;

	settle(a, vm);
	if (running(vm))
		return 0;
	snprintf(rel, sizeof rel, "%s", vm->c.id);
	fd = fs_mkdir_beneath(a->vms->dirfd, rel, 0700);
	if (fd < 0)
		return nq_error_setr(err, fd, "io_error", NULL,
			"cannot create the VM's run directory: %s", strerror(-fd));
	close(fd);
	r = pin_rootfs(a, vm, err);
	if (r < 0)
		return r;
	fill_spec(a, vm, &spec);
	r = ops->start(&spec, &p, err);
	if (r < 0) {
		unpin_rootfs(a, vm);
		return r;
	}
	vm->proc = p;
	r = save(a, vm);
	if (r < 0)
		log_warn("cannot record VM pid id=%s err=%s", vm->c.id, strerror(-r));
	log_info("VM started id=%s pid=%d hypervisor=%s rootfs=%s", vm->c.id,
		(int)p.pid, vm->c.hypervisor, vm->rootfs);
	return 0;
}

static void
do_stop(struct agent *a, struct vm *vm)
{
	struct vmm_spec spec;

	if (running(vm)) {
		fill_spec(a, vm, &spec);
		if (vmm_find(vm->c.hypervisor)->request_shutdown(&spec, &vm->proc) < 0 ||
		    !vmm_proc_wait_exit(&vm->proc, VM_STOP_DEADLINE_MS)) {
			log_warn("VM did not stop in time, killing id=%s pid=%d", vm->c.id,
				(int)vm->proc.pid);
			vmm_proc_kill(&vm->proc);
		}
		log_info("VM stopped id=%s", vm->c.id);
	}
	vm->proc.pid = 0;
	vm->proc.starttime = 0;
	unpin_rootfs(a, vm);
	(void)save(a, vm);
}

static int
check_image(struct agent *a, const char *field, const char *name, struct nq_error *err)
{
	struct stat st;

	if (fstatat(a->image_dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    !S_ISREG(st.st_mode))
		return nq_error_setr(err, -ENOENT, "image_not_found", field,
			"%s '%s' is not in the image directory", field, name);
	return 0;
}

int
vms_create(struct agent *a, const struct vm_create *c, json_t **ret, struct nq_error *err)
{
	struct vm_table *t = a->vms;
	struct vm *vm;
	size_t slot = VM_MAX;
	int r;

	if ((r = check_image(a, "kernel", c->kernel, err)) < 0 ||
	    (c->initrd[0] && (r = check_image(a, "initrd", c->initrd, err)) < 0))
		return r;
	vm = calloc(1, sizeof *vm);
	if (!vm)
		return -ENOMEM;
	vm->c = *c;
	if (!vm->c.hypervisor[0])
		snprintf(vm->c.hypervisor, sizeof vm->c.hypervisor, "%s",
			vms_default_hypervisor(a));
	pthread_mutex_lock(&t->lock);
	if (find(t, c->id)) {
		r = nq_error_set(err, "already_exists", "id", "VM %s already exists", c->id);
		goto fail;
	}
	for (size_t i = 0; i < VM_MAX && slot == VM_MAX; i++)
		if (!t->v[i])
			slot = i;
	if (slot == VM_MAX) {
		r = nq_error_setr(err, -ENOSPC, "conflict", NULL,
			"this host runs %d VMs already", VM_MAX);
		goto fail;
	}
	if (c->start)
		r = do_start(a, vm, err);
	else if ((r = pin_rootfs(a, vm, err)) >= 0)
		unpin_rootfs(a, vm);
	if (r < 0)
		goto fail;
	r = save(a, vm);
	if (r < 0) {
		do_stop(a, vm);
		nq_error_setr(err, r, "io_error", NULL, "cannot record the VM: %s",
			strerror(-r));
		goto fail;
	}
	t->v[slot] = vm;
	*ret = vm_json(a, vm);
	pthread_mutex_unlock(&t->lock);
	return 0;
fail:
	pthread_mutex_unlock(&t->lock);
	free(vm);
	return r;
}

typedef int (*vm_op_fn)(struct agent *a, struct vm *vm, struct nq_error *err);

static int
op_start(struct agent *a, struct vm *vm, struct nq_error *err)
{
	return do_start(a, vm, err);
}

static int
op_stop(struct agent *a, struct vm *vm, struct nq_error *err)
{
	(void)err;
	do_stop(a, vm);
	return 0;
}

static int
op_restart(struct agent *a, struct vm *vm, struct nq_error *err)
{
	do_stop(a, vm);
	return do_start(a, vm, err);
}

static int
op_none(struct agent *a, struct vm *vm, struct nq_error *err)
{
	(void)a, (void)vm, (void)err;
	return 0;
}

static int
with_vm(struct agent *a, const char *id, vm_op_fn fn, json_t **ret, struct nq_error *err)
{
	struct vm_table *t = a->vms;
	struct vm *vm;
	int r;

	pthread_mutex_lock(&t->lock);
	vm = find(t, id);
	if (!vm)
		r = nq_error_setr(err, -ENOENT, "not_found", "id", "no VM %s on this host", id);
	else if ((r = fn(a, vm, err)) >= 0)
		*ret = vm_json(a, vm);
	pthread_mutex_unlock(&t->lock);
	return r;
}

int
vms_start(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_start, ret, err);
}

int
vms_stop(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_stop, ret, err);
}

int
vms_restart(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_restart, ret, err);
}

int
vms_get(struct agent *a, const char *id, json_t **ret, struct nq_error *err)
{
	return with_vm(a, id, op_none, ret, err);
}

int
vms_delete(struct agent *a, const char *id, struct nq_error *err)
{
	struct vm_table *t = a->vms;
	char name[NQ_UUID_LEN + 16];
	int r = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < VM_MAX; i++) {
		struct vm *vm = t->v[i];
		if (!vm || strcmp(vm->c.id, id))
			continue;
		do_stop(a, vm);
		snprintf(name, sizeof name, "%s/api.sock", id);
		unlinkat(t->dirfd, name, 0);
		snprintf(name, sizeof name, "%s/console.log", id);
		unlinkat(t->dirfd, name, 0);
		snprintf(name, sizeof name, "%s/serial.log", id);
		unlinkat(t->dirfd, name, 0);
		unlinkat(t->dirfd, id, AT_REMOVEDIR);
		snprintf(name, sizeof name, "%s.json", id);
		if (unlinkat(t->dirfd, name, 0) < 0 && errno != ENOENT)
			r = nq_error_setr(err, -errno, "io_error", NULL,
				"cannot delete the VM record: %s", strerror(errno));
		free(vm);
		t->v[i] = NULL;
		log_info("VM deleted id=%s", id);
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

json_t *
vms_list(struct agent *a)
{
	struct vm_table *t = a->vms;
	json_t *arr = json_array();

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < VM_MAX; i++)
		if (t->v[i])
			json_array_append_new(arr, vm_json(a, t->v[i]));
	pthread_mutex_unlock(&t->lock);
	return arr;
}
