"""Issue 9 (items 3 and 4): the agent supervises its FUSE mounts.

A killed nqrust-smbfs bridge is noticed by the health watchdog, the dead
mount is detached and mounted again, and the VMs whose disks were on it end
in state "error" with cause "storage connection lost" and can be started
again. An agent restart never adopts a dead mount. A server that stops
answering costs at most a fixed number of agent threads however often the
mount is checked or asked for its capacity."""

import os
import signal
import time

import pytest

from daemon import proc_running, smbfs_pids, wait_for
from fixtures_agent import new_id
from fixtures_vm import (create, create_vm, make_volume, mount_backend, put_image,
                         run_vm_agent, vm_in)
from smbd import Smbd

MiB = 1 << 20
LOST = "storage connection lost"


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


def mount_entry(agent, mount_point):
    st, lst = agent.request("GET", "/v1/storage/smb/mounts")
    assert st == 200, lst
    return next((m for m in lst if m["mount_point"] == mount_point), None)


def capacity(agent, bid, timeout=120):
    return agent.request("GET", "/v1/storage/smb/mounts/%s/capacity" % bid,
                         timeout=timeout)


def vm_setup(agent, smbd):
    bid, vid, path, m = make_volume(agent, smbd)
    st, vm = create(agent, bid, vid, vcpus=1, memory_mib=128)
    assert st == 201 and vm["state"] == "running", vm
    # The VMM really holds its disk open on the share (what dies with it).
    assert path in open_files(vm["pid"]), open_files(vm["pid"])
    return bid, m, {"path": path}, vm


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
def agent(fake_fc):
    """An agent (default watchdog interval) with the fake Firecracker; it
    also serves the manager fixtures of this module."""
    yield from run_vm_agent(fake_fc)


def test_killed_bridge_is_replaced_and_its_vm_ends_in_error(agent, smbd):
    bid, m, vol, vm = vm_setup(agent, smbd)
    mp = m["mount_point"]
    assert mount_entry(agent, mp)["health"] == "ok"
    old = smbfs_pids(mp)
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
    new = wait_for(lambda: [p for p in smbfs_pids(mp) if p not in old], 10)
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
    old = smbfs_pids(mp)
    os.kill(old[0], signal.SIGKILL)
    wait_for(lambda: not smbfs_pids(mp), 5)
    t0 = time.monotonic()
    st, cap = capacity(agent, bid)
    assert st == 200 and cap["total_bytes"] > 0, cap
    assert cap["health"] == "ok", cap
    assert time.monotonic() - t0 < 10
    assert [p for p in smbfs_pids(mp) if p not in old]
    assert_share_usable(agent, smbd, bid, m)


def test_agent_restart_never_adopts_a_dead_mount(agent, smbd):
    bid, m, vol, vm = vm_setup(agent, smbd)
    mp = m["mount_point"]
    assert agent.stop() == 0
    assert proc_running(vm["pid"])  # VMs outlive an agent restart
    old = smbfs_pids(mp)
    os.kill(old[0], signal.SIGKILL)
    assert wait_for(lambda: not smbfs_pids(mp), 5)
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
    assert [p for p in smbfs_pids(mp) if p not in old]
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
        # The watchdog finds the mount hung (polled, however slow the
        # machine), then gets a few more rounds to leak threads, if it did.
        assert wait_for(lambda: mount_entry(agent, mp)["health"] == "hung", 60), \
            mount_entry(agent, mp)
        time.sleep(3)
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
    from fixtures_manager import smb_config
    s = Smbd().start()
    stopped = False
    try:
        st, b = manager.create_backend("hung", smb_config(s, "guest"))
        assert st == 201, b
        assert wait_for(lambda: manager.backends()["hung"]["status"] == "ok", 30)
        os.killpg(s.proc.pid, signal.SIGSTOP)
        stopped = True

        def shows_cause():
            x = manager.backends()["hung"]
            err = x.get("status_error") or {}
            return x if x["status"] == "unreachable" and err.get("code") == "smb_timeout" \
                else None
        x = wait_for(shows_cause, 60)
        assert x, manager.backends()["hung"]
        assert "has not answered an earlier request" in x["status_error"]["message"] or \
            "did not answer" in x["status_error"]["message"], x
        os.killpg(s.proc.pid, signal.SIGCONT)
        stopped = False
        assert wait_for(lambda: manager.backends()["hung"]["status"] == "ok", 90), \
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
        old = smbfs_pids(mp)
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
        assert [p for p in smbfs_pids(mp) if p not in old]
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
    from fixtures_manager import smb_config
    put_image(agent, data=b"")
    st, b = manager.create_backend("vmstore", smb_config(smbd))
    assert st == 201, b
    st, vm = create_vm(manager, b["id"], "rootfs.ext4", name="web-1")
    assert st == 201, vm

    def state(*want):
        return vm_in(manager, vm["id"], *want)
    assert wait_for(lambda: state("running"), 60)
    mp = os.path.dirname(state("running")["volume"]["path"])
    pids = [p for m in os.listdir(agent.mount_base)
            for p in smbfs_pids(os.path.join(agent.mount_base, m))]
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    v = wait_for(lambda: state("error"), 20)
    assert v and v["error"] == LOST, state("running", "stopped", "error")
    st, r = manager.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200 and r["state"] == "running" and r["error"] is None, r
    assert mp.startswith(agent.mount_base)
    assert wait_for(lambda: manager.backends()["vmstore"]["status"] == "ok", 30)
    st, _ = manager.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204
