"""pytest fixtures for VMs: the fake Firecracker installed as a program the
agent runs, an agent configured to use it, and an SMB backend mounted on
that agent. Teardown deletes every VM so no VMM outlives a test."""

import glob
import json
import os
import shutil
import signal
import tempfile

import pytest

from daemon import proc_running, wait_for  # noqa: F401  (proc_running re-exported)
from fixtures_agent import Agent, new_id

HERE = os.path.dirname(os.path.abspath(__file__))


class FakeFirecracker:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="nqrust-fakefc-")
        os.chmod(self.dir, 0o755)
        self.path = os.path.join(self.dir, "firecracker")
        shutil.copy(os.path.join(HERE, "fake_firecracker.py"), self.path)
        os.chmod(self.path, 0o755)
        self.log = os.path.join(self.dir, "requests.jsonl")

    def requests(self, vm_id=None):
        try:
            with open(self.log) as f:
                out = [json.loads(l) for l in f if l.strip()]
        except FileNotFoundError:
            return []
        return [r for r in out if vm_id is None or r["vm"] == vm_id]

    def clear(self):
        if os.path.exists(self.log):
            os.unlink(self.log)

    def write_pattern(self, vm_id, offset, size, pattern, threads=4, fsync_every=4,
                      pause=0.0, hold_after=None):
        """Make the guest of VM vm_id write pattern over [offset, offset +
        size) of its root disk in a loop from its start until its VMM dies
        (fake_firecracker.py); with hold_after=N each writer waits after N
        rounds for write_go(vm_id). None stops that for the next start."""
        marker = os.path.join(self.dir, "write-pattern-" + vm_id)
        if pattern is None:
            if os.path.exists(marker):
                os.unlink(marker)
            return
        with open(marker, "w") as f:
            json.dump({"offset": offset, "size": size, "pattern": pattern,
                       "threads": threads, "fsync_every": fsync_every,
                       "pause": pause, "hold_after": hold_after}, f)

    def write_go(self, vm_id):
        """Release the writers held by write_pattern(hold_after=...)."""
        open(os.path.join(self.dir, "write-go-" + vm_id), "w").close()

    def ignore_ctrl_alt_del(self, vm_id, on=True):
        """Make the guest of VM vm_id ignore SendCtrlAltDel: a stop then
        waits for the agent's --vm-stop-timeout and kills the VMM."""
        marker = os.path.join(self.dir, "ignore-ctrl-alt-del-" + vm_id)
        if on:
            open(marker, "w").close()
        elif os.path.exists(marker):
            os.unlink(marker)


def kill_vmms(agent):
    """Delete every VM through the API; kill any recorded VMM left over."""
    try:
        st, vms = agent.request("GET", "/v1/vms")
        for vm in vms if st == 200 else []:
            agent.request("DELETE", "/v1/vms/" + vm["id"])
    except OSError:
        pass
    for rec in glob.glob(os.path.join(agent.state_dir, "vms", "*.json")):
        try:
            with open(rec) as f:
                pid = json.load(f).get("pid")
            if pid:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            pass


@pytest.fixture
def fake_fc():
    fc = FakeFirecracker()
    yield fc
    shutil.rmtree(fc.dir, ignore_errors=True)


MiB = 1 << 20


def put_image(agent, name="rootfs.ext4", size=16 * MiB, data=b"rootfs!"):
    """A sparse image of size bytes in the agent's image dir, starting with
    data; a data of None fills all of it with random bytes."""
    with open(os.path.join(agent.image_dir, name), "wb") as f:
        if data is None:
            for _ in range(size // MiB):
                f.write(os.urandom(MiB))
        f.truncate(size)
        if data is not None:
            f.write(data)
    return name


def run_vm_agent(fake_fc, *extra_args):
    """An agent that runs the fake Firecracker, with a kernel for it."""
    a = Agent(extra_args=["--firecracker-path", fake_fc.path, *extra_args]).start()
    put_image(a, "vmlinux", 0, b"\x7fELF fake kernel for the fake firecracker")
    yield a
    kill_vmms(a)
    a.cleanup()


@pytest.fixture
def vm_agent(fake_fc):
    yield from run_vm_agent(fake_fc)


VM_STOP_TIMEOUT = 5


@pytest.fixture
def vm_agent_quick_stop(fake_fc):
    """vm_agent that kills a VM VM_STOP_TIMEOUT s after asking it to stop."""
    yield from run_vm_agent(fake_fc, "--vm-stop-timeout", str(VM_STOP_TIMEOUT))


def mount_backend(agent, smbd, share="guest"):
    bid = new_id()
    st, r = agent.mount(backend_id=bid, server=smbd.host, share=share,
                        subdir="vms-" + bid[:8], mount_options="port=%d" % smbd.port)
    assert st == 200, r
    return bid, r


def make_volume(agent, smbd, size=16 * MiB):
    """A mounted backend and a volume cloned on it from a fresh image:
    (backend id, volume id, volume path, mount reply)."""
    put_image(agent, size=size)
    bid, m = mount_backend(agent, smbd)
    vid = new_id()
    st, r = agent.request("POST", "/v1/storage/smb/volumes",
                          {"backend_id": bid, "volume_id": vid, "image": "rootfs.ext4"})
    assert st == 201, r
    return bid, vid, r["path"], m


def create(agent, bid, vid, **kw):
    """POST /v1/vms on the agent (2 vCPUs, 256 MiB unless kw says)."""
    body = {"id": new_id(), "backend_id": bid, "volume_id": vid, "vcpus": 2,
            "memory_mib": 256, "kernel": "vmlinux"}
    body.update(kw)
    return agent.request("POST", "/v1/vms", body)


def create_vm(manager, backend_id, image, name="vm-1", **kw):
    """POST /v1/vms on the manager (1 vCPU, 128 MiB unless kw says)."""
    body = {"name": name, "vcpus": 1, "memory_mib": 128, "image_id": image,
            "storage_backend_id": backend_id}
    body.update(kw)
    return manager.request("POST", "/v1/vms", body)


def vm_in(manager, vm_id, *states):
    """The manager's VM vm_id when its state is one of states, else None."""
    st, vm = manager.request("GET", "/v1/vms/" + vm_id)
    assert st == 200, vm
    return vm if vm["state"] in states else None


def wait_state(manager, vm_id, states=("running", "error", "stopped"), timeout=60):
    """The manager's VM once its state is one of states (polled)."""
    vm = wait_for(lambda: vm_in(manager, vm_id, *states), timeout=timeout)
    assert vm, "VM %s did not reach %s" % (vm_id, states)
    return vm
