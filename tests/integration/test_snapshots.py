"""Disk snapshots (issue 13 §2): a snapshot of a running VM pauses it,
copies and resumes it (the fake Firecracker records PATCH /vm in order, also
when the copy fails); the API's validation, conflicts and cleanup; and with a
real QEMU guest whose marker proves which disk it booted: snapshot, revert
and a new VM made from the snapshot (four boots in all)."""

import os
import subprocess
import threading

import pytest

from fixtures_manager import ADMIN_PASSWORD, smb_config, wait_for
from fixtures_qemu import boot_until_poweroff
from fixtures_vm import create_vm, kill_vmms, put_image, run_vm_agent, wait_state

MiB = 1 << 20


@pytest.fixture
def fc_agent(gates, fake_fc):
    yield from run_vm_agent(fake_fc)


def backing(smbd, path):
    return os.path.join(smbd.shares["guest"], os.path.basename(path))


def vm_patches(fake_fc, vm_id):
    return [(r["method"], r["path"], (r["body"] or {}).get("state"), r["status"])
            for r in fake_fc.requests(vm_id) if r["method"] == "PATCH"]


def events(manager, action):
    st, ev = manager.request("GET", "/v1/events?limit=200")
    assert st == 200, ev
    items = ev["events"] if isinstance(ev, dict) else ev
    return [e for e in items if e.get("action") == action]


# PostgreSQL here, SQLite in the QEMU test below: both engines, one run each.
@pytest.mark.parametrize("engine", ["postgres"], indirect=False)
@pytest.mark.parametrize("agent", [None], indirect=False)
def test_snapshot_of_running_vm_pauses_copies_resumes(manager_factory, fc_agent, fake_fc,
                                                        smbd, gates):
    manager = manager_factory(agent_obj=fc_agent)
    put_image(fc_agent, size=16 * MiB, data=b"disk-A")
    st, b = manager.create_backend("snapstore", smb_config(smbd))
    assert st == 201, b
    st, vm = create_vm(manager, b["id"], "rootfs.ext4", name="snap-vm")
    assert st == 201, vm
    vm = wait_state(manager, vm["id"])
    assert vm["state"] == "running", vm
    disk = backing(smbd, vm["volume"]["path"])

    st, s = manager.request("POST", "/v1/vms/%s/snapshots" % vm["id"], {"name": "first"})
    assert st == 201, s
    assert s["vm_id"] == vm["id"] and s["name"] == "first" and s["state"] == "ready"
    assert s["backend_id"] == b["id"] and s["size_bytes"] == 16 * MiB and s["created_at"]
    assert vm_patches(fake_fc, vm["id"]) == [("PATCH", "/vm", "Paused", 204),
                                             ("PATCH", "/vm", "Resumed", 204)]
    snap_file = os.path.join(os.path.dirname(disk), "smb-%s.raw" % s["id"])
    with open(snap_file, "rb") as f:
        assert f.read(6) == b"disk-A"
    assert os.path.getsize(snap_file) == 16 * MiB
    st, lst = manager.request("GET", "/v1/vms/%s/snapshots" % vm["id"])
    assert st == 200 and [x["id"] for x in lst] == [s["id"]], lst
    st, one = manager.request("GET", "/v1/snapshots/" + s["id"])
    assert st == 200 and one == s, one

    # The copy fails while the VM is paused (its disk vanished from the
    # share): the error comes back and the VM is resumed all the same.
    fake_fc.clear()
    gates.arm("snapshot-paused")
    res = {}
    t = threading.Thread(target=lambda: res.update(r=manager.request(
        "POST", "/v1/vms/%s/snapshots" % vm["id"], {"name": "second"})))
    t.start()
    gates.wait_reached("snapshot-paused")
    assert vm_patches(fake_fc, vm["id"]) == [("PATCH", "/vm", "Paused", 204)]
    os.rename(disk, disk + ".away")
    gates.release("snapshot-paused")
    t.join(120)
    os.rename(disk + ".away", disk)
    st, err = res["r"]
    assert st == 422 and err["error"]["code"] == "volume_missing", err
    assert vm_patches(fake_fc, vm["id"]) == [("PATCH", "/vm", "Paused", 204),
                                             ("PATCH", "/vm", "Resumed", 204)]
    st, lst = manager.request("GET", "/v1/vms/%s/snapshots" % vm["id"])
    assert [x["name"] for x in lst] == ["first"], lst
    assert not [f for f in os.listdir(os.path.dirname(disk)) if f.endswith(".tmp")]

    # The manager dies while the agent copies a running VM's disk: the
    # agent finishes (and resumes the VM); the restarted manager's
    # recovery adopts the finished snapshot left in state "creating".
    fake_fc.clear()
    gates.arm("snapshot-paused")
    def doomed():
        try:
            manager.request("POST", "/v1/vms/%s/snapshots" % vm["id"], {"name": "crashed"})
        except (OSError, ValueError):
            pass  # the manager died under the request
    t = threading.Thread(target=doomed)
    t.start()
    gates.wait_reached("snapshot-paused")
    st, lst = manager.request("GET", "/v1/vms/%s/snapshots" % vm["id"])
    crashed = [x for x in lst if x["name"] == "crashed"]
    assert [x["state"] for x in crashed] == ["creating"], lst
    manager.proc.kill()
    manager.proc.wait()
    manager.proc = None
    t.join(120)
    gates.release("snapshot-paused")
    crashed_file = os.path.join(os.path.dirname(disk), "smb-%s.raw" % crashed[0]["id"])
    assert wait_for(lambda: os.path.exists(crashed_file), timeout=60)
    assert wait_for(lambda: len(vm_patches(fake_fc, vm["id"])) == 2, timeout=60)
    manager.start()
    manager.token = None

    def settled():
        st, x = manager.request("GET", "/v1/snapshots/" + crashed[0]["id"])
        return st == 200 and x["state"] == "ready" and x["size_bytes"] == 16 * MiB
    assert wait_for(settled, timeout=60)
    st, _ = manager.request("DELETE", "/v1/vms/%s/snapshots/%s"
                            % (vm["id"], crashed[0]["id"]))
    assert st == 204 and not os.path.exists(crashed_file)

    # Validation and conflicts.
    st, e = manager.request("POST", "/v1/vms/%s/snapshots" % vm["id"], {"name": "../x"})
    assert st == 400 and e["error"]["field"] == "name", e
    st, e = manager.request("POST", "/v1/vms/%s/snapshots" % vm["id"], {"name": "first"})
    assert st == 409 and e["error"]["field"] == "name", e
    st, e = manager.request("POST", "/v1/vms/%s/revert" % vm["id"],
                            {"snapshot_id": s["id"]})
    assert st == 409 and e["error"]["code"] == "invalid_state", e
    st, e = manager.request("POST", "/v1/vms", {
        "name": "both", "vcpus": 1, "memory_mib": 128, "image_id": "rootfs.ext4",
        "source_snapshot_id": s["id"]})
    assert st == 400 and e["error"]["field"] == "source_snapshot_id", e
    st, e = manager.request("DELETE", "/v1/volumes/" + s["id"])
    assert st == 409, e
    st, e = manager.request("DELETE", "/v1/storage/backends/" + b["id"])
    assert st == 409 and e["error"]["code"] == "backend_in_use", e
    assert s["id"] in str(e["error"]), e

    # The CLI: names for VMs and snapshots.
    from test_cli import Cli
    cli = Cli(manager)
    rc, out, err = cli.run("login", "--username", "admin", "--password-stdin",
                           stdin=ADMIN_PASSWORD + "\n")
    assert rc == 0, err
    rc, out, err = cli.run("vm", "snapshot", "create", "snap-vm", "--name", "by-cli")
    assert rc == 0 and "by-cli" in out and "ready" in out, (out, err)
    lst = cli.json("vm", "snapshot", "list", "snap-vm")
    assert [x["name"] for x in lst] == ["first", "by-cli"], lst
    rc, out, err = cli.run("vm", "revert", "snap-vm", "--to", "by-cli")
    assert rc == 1 and "invalid_state" in err, (out, err)
    rc, out, err = cli.run("vm", "create", "--name", "x", "--from-snapshot", "snap-vm/nope")
    assert rc == 1 and "no snapshot" in err, (out, err)
    rc, out, err = cli.run("vm", "snapshot", "delete", "snap-vm", "by-cli")
    assert rc == 0, err

    # Delete one snapshot; deleting the VM deletes the others.
    st, s2 = manager.request("POST", "/v1/vms/%s/snapshots" % vm["id"], {"name": "second"})
    assert st == 201, s2
    st, _ = manager.request("DELETE", "/v1/vms/%s/snapshots/%s" % (vm["id"], s["id"]))
    assert st == 204 and not os.path.exists(snap_file)
    st, _ = manager.request("GET", "/v1/snapshots/" + s["id"])
    assert st == 404
    assert len(events(manager, "snapshot.created")) == 3
    assert len(events(manager, "snapshot.deleted")) == 3
    st, _ = manager.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204
    assert not os.path.exists(os.path.join(os.path.dirname(disk),
                                           "smb-%s.raw" % s2["id"]))
    st, _ = manager.request("GET", "/v1/snapshots/" + s2["id"])
    assert st == 404
    st, _ = manager.request("DELETE", "/v1/storage/backends/" + b["id"])
    assert st == 204


# ---- a real guest under QEMU ----

@pytest.mark.parametrize("engine", ["sqlite"], indirect=False)
@pytest.mark.parametrize("agent", [None], indirect=False)
def test_qemu_snapshot_revert_and_clone(manager_factory, qemu_agent, smbd):
    """The demo guest prints NQRUST-MARKER-ABSENT or -FOUND <lines of
    /marker>, appends a line and powers off: the boot count a disk has seen
    shows which disk a guest booted."""
    manager = manager_factory(agent_obj=qemu_agent)
    st, b = manager.create_backend("qemu-snaps", smb_config(smbd))
    assert st == 201, b
    st, vm = create_vm(manager, b["id"], "demo.ext4", name="orig", memory_mib=256)
    assert st == 201, vm
    out = boot_until_poweroff(manager, qemu_agent, vm["id"])           # boot 1
    assert "NQRUST-MARKER-ABSENT" in out, out[-3000:]

    st, snap = manager.request("POST", "/v1/vms/%s/snapshots" % vm["id"],
                               {"name": "after-first-boot"})
    assert st == 201 and snap["state"] == "ready", snap

    st, r = manager.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200, r
    out = boot_until_poweroff(manager, qemu_agent, vm["id"])           # boot 2
    assert "NQRUST-MARKER-FOUND 1" in out, out[-3000:]

    st, r = manager.request("POST", "/v1/vms/%s/revert" % vm["id"],
                            {"snapshot_id": snap["id"]})
    assert st == 200 and r["state"] == "stopped", r
    assert events(manager, "vm.reverted")
    # Boots 3 and 4 side by side (two cores): the reverted VM and a new VM
    # made from the snapshot both find the snapshot's single marker line.
    st, r = manager.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200, r
    st, clone = manager.request("POST", "/v1/vms", {
        "name": "from-snap", "vcpus": 1, "memory_mib": 256,
        "source_snapshot_id": snap["id"]})
    assert st == 201, clone
    out = boot_until_poweroff(manager, qemu_agent, vm["id"])           # boot 3
    assert "NQRUST-MARKER-FOUND 1" in out, out[-3000:]
    out = boot_until_poweroff(manager, qemu_agent, clone["id"])        # boot 4
    assert "NQRUST-MARKER-FOUND 1" in out, out[-3000:]
    st, clone = manager.request("GET", "/v1/vms/" + clone["id"])
    assert clone["storage_backend_id"] == b["id"], clone
    assert clone["volume"]["id"] != snap["id"]

    # The snapshot stayed through the revert and the clone.
    st, lst = manager.request("GET", "/v1/vms/%s/snapshots" % vm["id"])
    assert st == 200 and [s["id"] for s in lst] == [snap["id"]], lst
    for v in (clone, vm):
        st, _ = manager.request("DELETE", "/v1/vms/" + v["id"])
        assert st == 204
