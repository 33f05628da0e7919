"""Agent VM lifecycle with the fake Firecracker: the requests on the wire
match Firecracker's API, the rootfs is the volume file on the SMB share,
and VMs survive an agent restart and stay controllable."""

import os
import threading
import time

from fixtures_agent import new_id
from fixtures_vm import VM_STOP_TIMEOUT, create, make_volume, proc_running

MiB = 1 << 20


def test_lifecycle_speaks_firecracker_api(vm_agent, fake_fc, smbd):
    bid, vid, path, m = make_volume(vm_agent, smbd)
    assert path.startswith(m["volume_dir"] + "/")
    st, vm = create(vm_agent, bid, vid)
    assert st == 201, vm
    assert vm["state"] == "running" and vm["hypervisor"] == "firecracker"
    assert vm["rootfs"] == path
    reqs = fake_fc.requests(vm["id"])
    assert [(r["method"], r["path"], r["status"]) for r in reqs] == [
        ("PUT", "/machine-config", 204), ("PUT", "/boot-source", 204),
        ("PUT", "/drives/rootfs", 204), ("PUT", "/actions", 204)]
    assert reqs[0]["body"] == {"vcpu_count": 2, "mem_size_mib": 256, "smt": False}
    assert reqs[1]["body"]["kernel_image_path"] == os.path.join(vm_agent.image_dir,
                                                                "vmlinux")
    # Writeback: the guest's flushes reach the host file (and so the SMB
    # server); Firecracker's default, Unsafe, drops them.
    assert reqs[2]["body"] == {"drive_id": "rootfs", "path_on_host": path,
                               "is_root_device": True, "is_read_only": False,
                               "cache_type": "Writeback"}
    assert reqs[3]["body"] == {"action_type": "InstanceStart"}
    # The file the fake opened is the one on the share (same inode via the mount).
    backing = os.path.join(smbd.shares["guest"], "vms-" + bid[:8], "smb-%s.raw" % vid)
    assert os.path.getsize(backing) == os.path.getsize(path)
    with open(backing, "rb") as f:
        assert f.read(7) == b"rootfs!"

    fake_fc.clear()
    st, r = vm_agent.request("POST", "/v1/vms/%s/stop" % vm["id"])
    assert st == 200 and r["state"] == "stopped" and r["pid"] is None, r
    assert [(q["path"], q["body"]) for q in fake_fc.requests(vm["id"])] == [
        ("/actions", {"action_type": "SendCtrlAltDel"})]
    assert not proc_running(vm["pid"])  # the VMM exited
    st, r = vm_agent.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200 and r["state"] == "running", r
    pid1 = r["pid"]
    st, r = vm_agent.request("POST", "/v1/vms/%s/restart" % vm["id"])
    assert st == 200 and r["state"] == "running" and r["pid"] != pid1, r
    paths = [q["path"] for q in fake_fc.requests(vm["id"])]
    assert paths.count("/drives/rootfs") == 2 and paths.count("/actions") == 4
    assert all(q["status"] == 204 for q in fake_fc.requests())

    st, _ = vm_agent.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204
    st, r = vm_agent.request("GET", "/v1/vms/" + vm["id"])
    assert st == 404 and r["error"]["code"] == "not_found"
    assert not os.path.exists(os.path.join(vm_agent.state_dir, "vms", vm["id"] + ".json"))
    st, _ = vm_agent.request("DELETE", "/v1/storage/smb/volumes/%s/%s" % (bid, vid))
    assert st == 204 and not os.path.exists(backing)


def test_fake_rejects_what_firecracker_rejects(vm_agent, fake_fc, smbd):
    """The fake is strict: a missing volume or kernel never reaches it, and
    the fake itself refuses unknown fields (checked directly)."""
    bid, vid, path, _ = make_volume(vm_agent, smbd)
    st, r = create(vm_agent, bid, new_id())
    assert st == 422 and r["error"]["code"] == "volume_missing", r
    st, r = create(vm_agent, bid, vid, kernel="nope")
    assert st == 422 and r["error"]["code"] == "image_not_found", r
    st, r = create(vm_agent, bid, vid, extra=1)
    assert st == 400 and r["error"]["field"] == "extra", r
    assert fake_fc.requests() == []
    st, vm = create(vm_agent, bid, vid, start=False)
    assert st == 201 and vm["state"] == "stopped"
    st, r = create(vm_agent, bid, vid, id=vm["id"])
    assert st == 409


def test_vm_survives_agent_restart(vm_agent, fake_fc, smbd):
    bid, vid, path, _ = make_volume(vm_agent, smbd)
    st, vm = create(vm_agent, bid, vid)
    assert st == 201, vm
    vm_agent.restart()
    assert proc_running(vm["pid"])
    st, r = vm_agent.request("GET", "/v1/vms/" + vm["id"])
    assert st == 200 and r["state"] == "running" and r["pid"] == vm["pid"], r
    assert "adopted running VM id=" + vm["id"] in vm_agent.log()
    fake_fc.clear()
    st, r = vm_agent.request("POST", "/v1/vms/%s/stop" % vm["id"])
    assert st == 200 and r["state"] == "stopped", r
    assert [q["body"] for q in fake_fc.requests(vm["id"])] == [
        {"action_type": "SendCtrlAltDel"}]
    st, r = vm_agent.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200 and r["state"] == "running", r


def localfile_vm(agent):
    """A running VM on a volume of the default localfile backend (no smbd)."""
    vid = new_id()
    st, v = agent.request("POST", "/v1/storage/localfile/volumes",
                          {"backend_id": "localfile-default", "volume_id": vid,
                           "image": "rootfs.ext4"})
    assert st == 201, v
    st, vm = create(agent, "localfile-default", vid, backend_kind="localfile")
    assert st == 201 and vm["state"] == "running", vm
    return vm


def test_slow_stop_blocks_no_other_vm(vm_agent_quick_stop, fake_fc):
    """A VM whose guest ignores the stop request holds its stop for the
    whole --vm-stop-timeout. Meanwhile the list (which the manager polls
    with a 3 s timeout), a get, and a stop and start of another VM answer
    at once; a second operation on the slow VM waits its turn."""
    agent = vm_agent_quick_stop
    st, r = agent.request("PUT", "/v1/storage/localfile/backends/localfile-default", {})
    assert st == 200, r
    with open(os.path.join(agent.image_dir, "rootfs.ext4"), "wb") as f:
        f.truncate(16 * MiB)
    slow, fast = localfile_vm(agent), localfile_vm(agent)
    fake_fc.ignore_ctrl_alt_del(slow["id"])

    done = {}

    def call(name, method, path):
        done[name] = agent.request(method, path, timeout=60)
        done[name + "_at"] = time.monotonic()

    stop = threading.Thread(target=call, args=("stop", "POST",
                                               "/v1/vms/%s/stop" % slow["id"]))
    t0 = time.monotonic()
    stop.start()
    # The stop is under way once the guest has been asked (and ignored it).
    while not any(q["body"] == {"action_type": "SendCtrlAltDel"}
                  for q in fake_fc.requests(slow["id"])):
        assert time.monotonic() - t0 < 5, "the agent never asked the slow VM to stop"
        time.sleep(0.02)
    fake_fc.ignore_ctrl_alt_del(slow["id"], on=False)  # its next VMM stops normally

    t1 = time.monotonic()
    st, vms = agent.request("GET", "/v1/vms", timeout=60)
    took = time.monotonic() - t1
    assert st == 200 and took < 2, "GET /v1/vms took %.1f s during a slow stop" % took
    assert stop.is_alive() and "stop" not in done, "the slow stop was over before the list"
    by_id = {v["id"]: v for v in vms}
    # A VM with an operation in progress is shown as it was when it began.
    assert by_id[slow["id"]]["state"] == "running", by_id
    assert by_id[slow["id"]]["pid"] == slow["pid"], by_id
    assert by_id[fast["id"]]["state"] == "running", by_id
    st, r = agent.request("GET", "/v1/vms/" + slow["id"], timeout=2)
    assert st == 200 and r["state"] == "running", r

    t1 = time.monotonic()
    st, r = agent.request("POST", "/v1/vms/%s/stop" % fast["id"], timeout=60)
    assert st == 200 and r["state"] == "stopped", r
    st, r = agent.request("POST", "/v1/vms/%s/start" % fast["id"], timeout=60)
    assert st == 200 and r["state"] == "running" and r["pid"] != fast["pid"], r
    took = time.monotonic() - t1
    assert took < 3, "stop + start of another VM took %.1f s" % took
    assert stop.is_alive(), "the slow stop was over before the other VM's start"

    # A start of the slow VM now waits for its stop, then starts it anew.
    start = threading.Thread(target=call, args=("start", "POST",
                                                "/v1/vms/%s/start" % slow["id"]))
    start.start()
    stop.join(VM_STOP_TIMEOUT + 30)
    start.join(30)
    assert not stop.is_alive() and not start.is_alive()
    st, r = done["stop"]
    assert st == 200 and r["state"] == "stopped" and r["pid"] is None, r
    assert done["stop_at"] - t0 >= VM_STOP_TIMEOUT - 0.5  # it did wait for the deadline
    assert "VM did not stop in time, killing id=" + slow["id"] in agent.log()
    assert not proc_running(slow["pid"])
    st, r = done["start"]
    assert st == 200 and r["state"] == "running" and r["pid"] != slow["pid"], r
    assert done["start_at"] >= done["stop_at"]
