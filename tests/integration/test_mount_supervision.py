"""Issue 9 (items 3 and 4): the agent supervises its FUSE mounts.

A killed nqrust-smbfs bridge is noticed by the health watchdog, the dead
mount is detached and mounted again, and the VMs whose disks were on it end
in state "error" with cause "storage connection lost" and can be started
again. An agent restart never adopts a dead mount. A server that stops
answering costs at most a fixed number of agent threads however often the
mount is checked or asked for its capacity."""

import os
import shutil
import signal
import time

import pytest

from fixtures_agent import Agent, new_id
from fixtures_vm import FakeFirecracker, kill_vmms, mount_backend, proc_running
from smbd import Smbd

MiB = 1 << 20
LOST = "storage connection lost"


def bridge_pids(mount_point):
    """Live nqrust-smbfs processes serving mount_point (from their argv)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if (len(argv) > 2 and os.path.basename(argv[0]) == b"nqrust-smbfs"
                and argv[2] == mount_point.encode() and b"--check" not in argv
                and proc_running(int(pid))):
            out.append(int(pid))
    return out


def open_files(pid):
    out = []
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                out.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
            except OSError:
                pass
    except OSError:
        pass
    return out


def wait_for(pred, timeout, step=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def mount_entry(agent, mount_point):
    st, lst = agent.request("GET", "/v1/storage/smb/mounts")
    assert st == 200, lst
    return next((m for m in lst if m["mount_point"] == mount_point), None)


def capacity(agent, bid, timeout=120):
    return agent.request("GET", "/v1/storage/smb/mounts/%s/capacity" % bid,
                         timeout=timeout)


def vm_setup(agent, smbd):
    with open(os.path.join(agent.image_dir, "rootfs.ext4"), "wb") as f:
        f.truncate(16 * MiB)
        f.write(b"rootfs!")
    bid, m = mount_backend(agent, smbd)
    vid = new_id()
    st, vol = agent.request("POST", "/v1/storage/smb/volumes",
                            {"backend_id": bid, "volume_id": vid, "image": "rootfs.ext4"})
    assert st == 201, vol
    st, vm = agent.request("POST", "/v1/vms", {
        "id": new_id(), "backend_id": bid, "volume_id": vid, "vcpus": 1,
        "memory_mib": 128, "kernel": "vmlinux"})
    assert st == 201 and vm["state"] == "running", vm
    # The VMM really holds its disk open on the share (what dies with it).
    assert vol["path"] in open_files(vm["pid"]), open_files(vm["pid"])
    return bid, m, vol, vm


def assert_share_usable(agent, smbd, bid, m):
    st, cap = capacity(agent, bid)
    assert st == 200 and cap["total_bytes"] > 0, cap
    vid = new_id()
    st, vol = agent.request("POST", "/v1/storage/smb/volumes",
                            {"backend_id": bid, "volume_id": vid, "size_bytes": MiB})
    assert st == 201, vol
    with open(vol["path"], "r+b") as f:
        f.write(b"written after the repair")
        os.fsync(f.fileno())
    backing = os.path.join(smbd.shares["guest"], os.path.relpath(vol["path"],
                                                                 m["mount_point"]))
    with open(backing, "rb") as f:
        assert f.read(24) == b"written after the repair"


@pytest.fixture
def agent():
    """An agent (default watchdog interval) with the fake Firecracker; it
    also serves the manager fixtures of this module."""
    fc = FakeFirecracker()
    a = Agent(extra_args=["--firecracker-path", fc.path]).start()
    with open(os.path.join(a.image_dir, "vmlinux"), "wb") as f:
        f.write(b"\x7fELF fake kernel for the fake firecracker")
    yield a
    kill_vmms(a)
    a.cleanup()
    shutil.rmtree(fc.dir, ignore_errors=True)


def test_killed_bridge_is_replaced_and_its_vm_ends_in_error(agent, smbd):
    bid, m, vol, vm = vm_setup(agent, smbd)
    mp = m["mount_point"]
    assert mount_entry(agent, mp)["health"] == "ok"
    old = bridge_pids(mp)
    assert len(old) == 1, old

    os.kill(old[0], signal.SIGKILL)  # what the OOM killer does
    t0 = time.monotonic()
    # Nobody asks the agent anything but the VM's state: the watchdog alone
    # notices, ends the VM and mounts the share again.
    def vm_lost():
        st, r = agent.request("GET", "/v1/vms/" + vm["id"])
        return r if st == 200 and r["state"] == "error" else None
    lost = wait_for(vm_lost, 10)
    assert lost, agent.log()[-3000:]
    t_lost = time.monotonic() - t0
    assert lost["error"] == LOST and lost["pid"] is None, lost
    assert not proc_running(vm["pid"])
    new = wait_for(lambda: [p for p in bridge_pids(mp) if p not in old], 10)
    assert new, agent.log()[-3000:]
    assert wait_for(lambda: (mount_entry(agent, mp) or {}).get("health") == "ok", 10)
    assert_share_usable(agent, smbd, bid, m)
    print("SIGKILL -> VM error in %.2f s, share usable again in %.2f s"
          % (t_lost, time.monotonic() - t0))
    assert time.monotonic() - t0 < 10, "repair took too long"
    assert "found a dead mount" not in agent.log()
    assert "mount is dead, detaching it" in agent.log()

    # The VM can be started again, on the new mount.
    st, r = agent.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200 and r["state"] == "running" and r["error"] is None, r
    assert vol["path"] in open_files(r["pid"])
    st, r = agent.request("POST", "/v1/vms/%s/stop" % vm["id"])
    assert st == 200 and r["state"] == "stopped", r


def test_capacity_repairs_a_dead_mount_at_once(agent_factory, smbd):
    # Watchdog off: the capacity query itself finds ENOTCONN and repairs.
    agent = agent_factory(extra_args=["--mount-check-interval", "0"])
    bid, m = mount_backend(agent, smbd)
    mp = m["mount_point"]
    old = bridge_pids(mp)
    os.kill(old[0], signal.SIGKILL)
    wait_for(lambda: not bridge_pids(mp), 5)
    t0 = time.monotonic()
    st, cap = capacity(agent, bid)
    assert st == 200 and cap["total_bytes"] > 0, cap
    assert cap["health"] == "ok", cap
    assert time.monotonic() - t0 < 10
    assert [p for p in bridge_pids(mp) if p not in old]
    assert_share_usable(agent, smbd, bid, m)


def test_agent_restart_never_adopts_a_dead_mount(agent, smbd):
    bid, m, vol, vm = vm_setup(agent, smbd)
    mp = m["mount_point"]
    assert agent.stop() == 0
    assert proc_running(vm["pid"])  # VMs outlive an agent restart
    old = bridge_pids(mp)
    os.kill(old[0], signal.SIGKILL)
    assert wait_for(lambda: not bridge_pids(mp), 5)
    assert mp in agent.mounts()  # still in mountinfo, answering ENOTCONN
    with pytest.raises(OSError):
        os.statvfs(mp)

    agent.start()
    log = agent.log()
    assert "found a dead mount" in log and "adopted existing mount" not in \
        log.split("found a dead mount")[1], log[-3000:]
    # The VM whose disk died is ended and told the truth.
    st, r = agent.request("GET", "/v1/vms/" + vm["id"])
    assert st == 200 and r["state"] == "error" and r["error"] == LOST, r
    assert wait_for(lambda: not proc_running(vm["pid"]), 10)
    # The share is mounted again (on demand) and usable.
    assert_share_usable(agent, smbd, bid, m)
    assert [p for p in bridge_pids(mp) if p not in old]
    st, r = agent.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200 and r["state"] == "running", r


def agent_threads(agent):
    return len(os.listdir("/proc/%d/task" % agent.proc.pid))


def test_hung_server_costs_a_bounded_number_of_threads(agent_factory):
    s = Smbd().start()
    stopped = False
    try:
        agent = agent_factory(probe_timeout=2,
                              extra_args=["--mount-check-interval", "1"])
        bid, m = mount_backend(agent, s)
        mp = m["mount_point"]
        st, cap = capacity(agent, bid)
        assert st == 200 and cap["health"] == "ok", cap
        time.sleep(1.5)  # let the watchdog settle (its checks come and go)
        before = agent_threads(agent)

        os.killpg(s.proc.pid, signal.SIGSTOP)  # accepts TCP, never answers
        stopped = True
        codes = set()
        t0 = time.monotonic()
        for _ in range(100):
            st, r = capacity(agent, bid, timeout=60)
            assert st == 422, r
            codes.add(r["error"]["code"])
        elapsed = time.monotonic() - t0
        assert codes == {"smb_timeout"}, codes
        # Only the first query waited for its deadline; the others were
        # refused at once because the first is still stuck on the mount.
        assert elapsed < 2 * 2 + 20, elapsed
        time.sleep(3)  # several watchdog rounds against the hung mount
        ent = mount_entry(agent, mp)
        assert ent["health"] == "hung", ent
        after = agent_threads(agent)
        print("threads before=%d after=%d, 100 capacity calls in %.2f s" % (before, after, elapsed))
        # At most one stuck worker for the mount, plus slack for the HTTP
        # connection thread and the watchdog's own.
        assert after <= before + 3, (before, after)
    finally:
        if stopped:
            os.killpg(s.proc.pid, signal.SIGCONT)
    try:
        assert wait_for(lambda: mount_entry(agent, mp)["health"] == "ok", 60), \
            mount_entry(agent, mp)
        st, cap = capacity(agent, bid)
        assert st == 200, cap
    finally:
        agent.request("DELETE", "/v1/storage/smb/mounts/" + bid)
        s.stop()


def test_manager_shows_why_a_hung_share_is_unreachable(manager, agent):
    """The manager's status refresher polls capacity; with the server hung,
    the backend turns unreachable with the agent's classified cause (not a
    bare agent timeout), and turns ok again when the server answers."""
    from fixtures_manager import smb_config, wait_for as mwait
    s = Smbd().start()
    stopped = False
    try:
        st, b = manager.create_backend("hung", smb_config(s, "guest"))
        assert st == 201, b
        assert mwait(lambda: manager.backends()["hung"]["status"] == "ok", 30)
        os.killpg(s.proc.pid, signal.SIGSTOP)
        stopped = True

        def shows_cause():
            x = manager.backends()["hung"]
            err = x.get("status_error") or {}
            return x if x["status"] == "unreachable" and err.get("code") == "smb_timeout" \
                else None
        x = mwait(shows_cause, 60)
        assert x, manager.backends()["hung"]
        assert "has not answered an earlier request" in x["status_error"]["message"] or \
            "did not answer" in x["status_error"]["message"], x
        os.killpg(s.proc.pid, signal.SIGCONT)
        stopped = False
        assert mwait(lambda: manager.backends()["hung"]["status"] == "ok", 90), \
            manager.backends()["hung"]
    finally:
        if stopped:
            os.killpg(s.proc.pid, signal.SIGCONT)
        manager.request("DELETE", "/v1/storage/backends/" + b["id"])
        s.stop()


def test_dead_mount_that_cannot_be_mounted_again_is_retried(agent_factory):
    """The bridge dies while the server is down: the repair's mount fails,
    the mount is listed dead with the mount error, and the watchdog mounts
    it again by itself once the server answers."""
    s = Smbd().start()
    stopped = False
    try:
        agent = agent_factory(probe_timeout=2, extra_args=["--mount-check-interval", "1"])
        bid, m = mount_backend(agent, s)
        mp = m["mount_point"]
        old = bridge_pids(mp)
        os.killpg(s.proc.pid, signal.SIGSTOP)
        stopped = True
        os.kill(old[0], signal.SIGKILL)
        ent = wait_for(lambda: (mount_entry(agent, mp) or {}).get("health") == "dead"
                       and mp not in agent.mounts() and mount_entry(agent, mp), 30)
        assert ent and ent["health_message"], (mount_entry(agent, mp), agent.log()[-2000:])
        assert ent["backends"] == [bid]
        os.killpg(s.proc.pid, signal.SIGCONT)
        stopped = False
        # No request from anyone: the watchdog retries on its own.
        assert wait_for(lambda: (mount_entry(agent, mp) or {}).get("health") == "ok", 60), \
            (mount_entry(agent, mp), agent.log()[-2000:])
        assert [p for p in bridge_pids(mp) if p not in old]
        st, cap = capacity(agent, bid)
        assert st == 200, cap
    finally:
        if stopped:
            os.killpg(s.proc.pid, signal.SIGCONT)
        agent.request("DELETE", "/v1/storage/smb/mounts/" + bid)
        s.stop()


def test_manager_reports_the_vm_that_lost_its_storage(manager, agent, smbd):
    """Through the manager: the VM ends in error with the agent's cause, and
    a start brings it back."""
    from fixtures_manager import smb_config, wait_for as mwait
    with open(os.path.join(agent.image_dir, "rootfs.ext4"), "wb") as f:
        f.truncate(16 * MiB)
    st, b = manager.create_backend("vmstore", smb_config(smbd))
    assert st == 201, b
    st, vm = manager.request("POST", "/v1/vms", {
        "name": "web-1", "vcpus": 1, "memory_mib": 128, "image_id": "rootfs.ext4",
        "storage_backend_id": b["id"]})
    assert st == 201, vm

    def state(*want):
        st, v = manager.request("GET", "/v1/vms/" + vm["id"])
        assert st == 200, v
        return v if v["state"] in want else None
    assert mwait(lambda: state("running"), 60)
    mp = os.path.dirname(state("running")["volume"]["path"])
    pids = [p for m in os.listdir(agent.mount_base)
            for p in bridge_pids(os.path.join(agent.mount_base, m))]
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    v = mwait(lambda: state("error"), 20)
    assert v and v["error"] == LOST, state("running", "stopped", "error")
    st, r = manager.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200 and r["state"] == "running" and r["error"] is None, r
    assert mp.startswith(agent.mount_base)
    assert mwait(lambda: manager.backends()["vmstore"]["status"] == "ok", 30)
    st, _ = manager.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204
