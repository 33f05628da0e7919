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


def run_vm_agent(fake_fc, *extra_args):
    a = Agent(extra_args=["--firecracker-path", fake_fc.path, *extra_args]).start()
    with open(os.path.join(a.image_dir, "vmlinux"), "wb") as f:
        f.write(b"\x7fELF fake kernel for the fake firecracker")
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


def proc_running(pid):
    """True when pid exists and is not a zombie (an adopted VMM's parent
    is init, which may be slow to reap it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False
