"""Issue 10, item 6: the agent reaps every VMM it started as soon as it
exits, without waiting for an API call, and records how it ended in the
VM object's last_exit, which the manager carries into its own VM object.

A guest that powers off is played by the fake Firecracker receiving
SendCtrlAltDel on its API socket straight from the test (as when the guest
resets): it exits 0 by itself, behind the agent's back."""

import json
import os
import signal
import time

import pytest

from fixtures_agent import Agent, UnixHTTPConnection
from fixtures_manager import wait_for
from fixtures_vm import create, kill_vmms, make_volume


def proc_stat(pid):
    """(state, ppid) of pid, or None when it is gone entirely."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def zombie_children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = proc_stat(int(d))
            if st and st[1] == ppid and st[0] == "Z":
                out.append(int(d))
    return out


def guest_powers_off(state_dir, vm_id):
    conn = UnixHTTPConnection(os.path.join(state_dir, "vms", vm_id, "api.sock"),
                              timeout=10)
    try:
        conn.request("PUT", "/actions", body=json.dumps({"action_type": "SendCtrlAltDel"}),
                     headers={"Content-Type": "application/json"})
        assert conn.getresponse().status == 204
    finally:
        conn.close()


def wait_reaped(agent, pid, timeout=8):
    """Without any API call: pid disappears (not even a zombie)."""
    gone = wait_for(lambda: proc_stat(pid) is None, timeout=timeout, interval=0.1)
    assert gone, "VMM %d is still there: %s (zombies of the agent: %s)" % (
        pid, proc_stat(pid), zombie_children(agent.proc.pid))
    assert zombie_children(agent.proc.pid) == []


def test_vmm_exits_by_itself_no_zombie_and_reason(vm_agent, fake_fc, smbd):
    bid, vid, _, _ = make_volume(vm_agent, smbd)
    st, vm = create(vm_agent, bid, vid)
    assert st == 201 and vm["state"] == "running", vm
    assert vm["last_exit"] is None
    pid = vm["pid"]
    assert proc_stat(pid)[1] == vm_agent.proc.pid  # our child

    guest_powers_off(vm_agent.state_dir, vm["id"])
    wait_reaped(vm_agent, pid)
    st, r = vm_agent.request("GET", "/v1/vms/" + vm["id"])
    assert st == 200 and r["state"] == "stopped" and r["pid"] is None, r
    e = r["last_exit"]
    assert e["code"] == 0 and e["signal"] is None, e
    assert e["reason"] == "the guest powered itself off" and e["requested"] is False, e
    assert abs(e["at"] - time.time()) < 60

    # A VMM that dies by a signal: the signal is the reason.
    st, r = vm_agent.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200 and r["state"] == "running", r
    pid = r["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_reaped(vm_agent, pid)
    st, r = vm_agent.request("GET", "/v1/vms/" + vm["id"])
    e = r["last_exit"]
    assert r["state"] == "stopped" and e["signal"] == 9 and e["code"] is None, r
    assert "SIGKILL" in e["reason"] and e["requested"] is False, e

    # A stop on request says so.
    st, r = vm_agent.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200
    pid = r["pid"]
    st, r = vm_agent.request("POST", "/v1/vms/%s/stop" % vm["id"])
    assert st == 200 and r["last_exit"]["requested"] is True, r
    assert r["last_exit"]["reason"] == "stopped on request", r
    assert proc_stat(pid) is None
    st, lst = vm_agent.request("GET", "/v1/vms")
    assert [v["last_exit"]["requested"] for v in lst] == [True]


@pytest.fixture
def fc_agent(fake_fc):
    a = Agent(extra_args=["--firecracker-path", fake_fc.path]).start()
    with open(os.path.join(a.image_dir, "vmlinux"), "wb") as f:
        f.write(b"\x7fELF fake kernel")
    with open(os.path.join(a.image_dir, "rootfs.ext4"), "wb") as f:
        f.truncate(4 << 20)
    yield a
    kill_vmms(a)
    a.cleanup()


@pytest.mark.parametrize("engine", ["sqlite"])
def test_manager_shows_last_exit(manager_factory, fc_agent):
    m = manager_factory(agent_obj=fc_agent)
    st, vm = m.request("POST", "/v1/vms", {"name": "off-1", "vcpus": 1,
                                           "memory_mib": 128, "image_id": "rootfs.ext4"})
    assert st == 201, vm

    def state(want):
        st, v = m.request("GET", "/v1/vms/" + vm["id"])
        assert st == 200, v
        return v if v["state"] == want else None
    running = wait_for(lambda: state("running"), timeout=60)
    assert running and running["last_exit"] is None, running
    st, avm = fc_agent.request("GET", "/v1/vms/" + vm["id"])
    pid = avm["pid"]
    guest_powers_off(fc_agent.state_dir, vm["id"])
    wait_reaped(fc_agent, pid)
    stopped = wait_for(lambda: state("stopped"), timeout=30)
    assert stopped, "the manager did not see the guest power off"
    e = stopped["last_exit"]
    assert e["reason"] == "the guest powered itself off" and e["code"] == 0, e
    st, lst = m.request("GET", "/v1/vms")
    assert st == 200 and lst[0]["last_exit"]["reason"] == "the guest powered itself off"
