"""Issue 10, items 1-4: recovery after a manager SIGKILL at each
provisioning step (SQLite and PostgreSQL), per-object claims instead of a
global lock (a hung server delays only its own backend; the 404 during a
backend create), errors that keep their meaning (a full share is 507
no_space), and a rotation that proves the password first.

Steps are paused on purpose with the `gates` fixture (fixtures_gates.py,
NQRUST_DEBUG_GATE_DIR): <dir>/<step>.wait holds a daemon at <step>, which
then creates <step>.reached; removing the .wait file releases it."""

import os
import subprocess
import threading
import time
import uuid

import pytest

from daemon import is_smbfs, pids_where
from fixtures_manager import smb_config, wait_for
from fixtures_vm import create_vm, run_vm_agent, wait_state

MiB = 1 << 20
GiB = 1 << 30


@pytest.fixture
def agent(gates, fake_fc):
    yield from run_vm_agent(fake_fc)


def sparse_image(agent, name="big.img", size=2 * GiB, data_mib=16):
    """A sparse image: size bytes, data_mib MiB of data in a few extents."""
    with open(os.path.join(agent.image_dir, name), "wb") as f:
        f.truncate(size)
        chunk = os.urandom(MiB)
        for i in range(data_mib):
            f.seek((i * size // data_mib) if data_mib > 1 else 0)
            f.write(chunk)
    return name


def subdir_backend(manager, smbd, name):
    sub = "cp-" + uuid.uuid4().hex[:8]
    st, b = manager.create_backend(name, smb_config(smbd, subdir=sub))
    assert st == 201, b
    return b, os.path.join(smbd.shares["guest"], sub)


def vol_files(voldir):
    """The volume dir's files, without the backend's base cache (kept)."""
    return [n for n in os.listdir(voldir) if n != ".nqrust-cache"]


def assert_all_gone(manager, backend_id, voldir):
    assert wait_for(lambda: vol_files(voldir) == [], timeout=30), vol_files(voldir)
    st, vms = manager.request("GET", "/v1/vms")
    assert st == 200 and vms == [], vms
    st, vols = manager.request("GET", "/v1/volumes")
    assert st == 200 and vols == [], vols
    st, r = manager.request("DELETE", "/v1/storage/backends/" + backend_id)
    assert st == 204, r


@pytest.mark.parametrize("step", ["clone", "vm-cloned", "vm-booted"])
def test_manager_sigkill_at_each_provisioning_step(manager, agent, smbd, gates, step):
    image = sparse_image(agent)
    b, voldir = subdir_backend(manager, smbd, "recover")
    gates.arm(step)
    st, vm = create_vm(manager, b["id"], image)
    assert st == 201, vm
    gates.wait_reached(step)
    if step == "clone":
        # In the middle of the clone: the agent holds the data in its temp
        # file and has not answered.
        assert any(n.endswith(".raw.tmp") for n in os.listdir(voldir)), os.listdir(voldir)
    manager.proc.kill()
    manager.proc.wait()
    manager.proc = None
    if step != "clone":
        gates.release(step)  # only the dead manager waited there
    manager.start()
    manager.token = None
    if step == "vm-booted":
        after = wait_state(manager, vm["id"], ("running",))
        assert after["error"] is None
    else:
        after = wait_state(manager, vm["id"], ("error",))
        assert "interrupted by a manager restart" in after["error"], after
    if step == "clone":
        # The unfinished clone was cancelled on the agent (which was still
        # holding it) and its temp file removed; no volume row is left.
        assert after["volume"] is None, after
        assert wait_for(lambda: vol_files(voldir) == [], timeout=30), vol_files(voldir)
    else:
        # The finished clone was adopted.
        assert after["volume"]["state"] == "ready", after
        assert os.path.getsize(os.path.join(voldir, os.path.basename(
            after["volume"]["path"]))) == 2 * GiB
    gates.release(step)
    if step == "clone":
        # Two concurrent starts of the failed VM provision it once.
        gates.arm("clone")
        replies = []
        ts = [threading.Thread(target=lambda: replies.append(manager.request(
            "POST", "/v1/vms/%s/start" % vm["id"]))) for _ in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        codes = sorted(st for st, _ in replies)
        assert codes == [200, 409], replies
        assert [r["error"]["code"] for st, r in replies if st == 409][0] in (
            "busy", "invalid_state"), replies
        gates.wait_reached("clone")
        tmps = [n for n in os.listdir(voldir) if n.endswith(".raw.tmp")]
        assert len(tmps) == 1, tmps
        gates.release("clone")
        wait_state(manager, vm["id"], ("running",))
    t0 = time.monotonic()
    st, r = manager.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204, r
    assert time.monotonic() - t0 < 30
    assert_all_gone(manager, b["id"], voldir)
    assert "debug gate: cancelled" in agent.log() or step != "clone"


def test_delete_cancels_provisioning(manager, agent, smbd, gates):
    image = sparse_image(agent)
    b, voldir = subdir_backend(manager, smbd, "cancel")
    gates.arm("clone")
    st, vm = create_vm(manager, b["id"], image)
    assert st == 201, vm
    gates.wait_reached("clone")
    # Stop/start on a VM a worker owns: refused at once, never queued.
    st, r = manager.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 409 and r["error"]["code"] == "busy", r
    t0 = time.monotonic()
    st, r = manager.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204, r
    assert time.monotonic() - t0 < 30
    st, r = manager.request("GET", "/v1/vms/" + vm["id"])
    assert st == 404
    assert_all_gone(manager, b["id"], voldir)


def test_hung_server_delays_only_its_backend(manager, agent, smbd, silent_server):
    with open(os.path.join(agent.image_dir, "small.img"), "wb") as f:
        f.truncate(4 * MiB)
    result = {}

    def hung_create():
        cfg = dict(smb_config(smbd, "guest"), server="127.0.0.1",
                   mount_options="port=%d" % silent_server)
        result["reply"] = manager.create_backend("hung", cfg)
    t = threading.Thread(target=hung_create)
    t.start()
    try:
        # The agent is in the middle of mounting the silent server: a probe
        # or bridge for it runs (and waits there for --probe-timeout, 10 s).
        needle = ("port=%d" % silent_server).encode()
        assert wait_for(lambda: pids_where(lambda argv: is_smbfs(argv, probes=True) and any(
            needle in a for a in argv)), timeout=60, interval=0.05), \
            agent.log()[-3000:]
        assert t.is_alive(), result
        t0 = time.monotonic()
        st, vm = create_vm(manager, "localfile-default", "small.img", name="other")
        took = time.monotonic() - t0
        assert st == 201, vm
        assert took < 1.0, took
        t0 = time.monotonic()
        st, _ = manager.request("GET", "/v1/vms")
        assert st == 200 and time.monotonic() - t0 < 1.0
        assert t.is_alive(), "the hung create finished before the timing was taken"
    finally:
        t.join(120)
    st, body = result["reply"]
    assert st == 422 and body["error"]["code"] in ("smb_timeout", "smb_unreachable"), body
    wait_state(manager, vm["id"], ("running", "error"))
    st, r = manager.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204, r


def test_agent_404_during_backend_create(manager, agent, smbd, gates):
    """storage_create -> refresh -> agent 404 -> re-attach: once a
    self-deadlock on the global mutex."""
    gates.arm("backend-created")
    result = {}
    t = threading.Thread(target=lambda: result.setdefault(
        "r", manager.create_backend("flap", smb_config(smbd, "guest"))))
    t.start()
    gates.wait_reached("backend-created")
    st, mounts = agent.request("GET", "/v1/storage/smb/mounts")
    assert st == 200
    ids = [i for m in mounts for i in m["backends"]]
    assert len(ids) == 1, mounts
    st, _ = agent.request("DELETE", "/v1/storage/smb/mounts/" + ids[0])
    assert st == 204
    st, _ = agent.request("GET", "/v1/storage/smb/mounts/%s/capacity" % ids[0])
    assert st == 404
    gates.release("backend-created")
    t.join(60)
    assert not t.is_alive(), "backend create hangs after an agent 404"
    st, b = result["r"]
    assert st == 201 and b["status"] == "ok", b
    st, _ = agent.request("GET", "/v1/storage/smb/mounts/%s/capacity" % ids[0])
    assert st == 200
    # The manager still answers other writes.
    st, r = manager.request("PATCH", "/v1/storage/backends/" + b["id"], {"name": "flap2"})
    assert st == 200, r


def test_full_share_is_507_no_space(manager, agent, smbd, tmp_path):
    img = str(tmp_path / "fs.img")
    subprocess.run(["truncate", "-s", "64M", img], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", img], check=True)
    sub = "full-" + uuid.uuid4().hex[:8]
    mnt = os.path.join(smbd.shares["guest"], sub)
    os.mkdir(mnt)
    subprocess.run(["mount", "-o", "loop", img, mnt], check=True)
    try:
        os.chmod(mnt, 0o777)
        st, b = manager.create_backend("full", smb_config(smbd, subdir=sub))
        assert st == 201, b
        sparse_image(agent, name="fat.img", size=512 * MiB, data_mib=128)
        st, r = manager.request("POST", "/v1/volumes", {"backend_id": b["id"],
                                                        "image": "fat.img"})
        assert st == 507 and r["error"]["code"] == "no_space", r
        # The failed attempt removed its own temp file (and the failed base
        # cache fill its own), and no row is left.
        assert [n for n in vol_files(mnt) if n != "lost+found"] == []
        cache = os.path.join(mnt, ".nqrust-cache")
        assert not os.path.exists(cache) or os.listdir(cache) == []
        st, vols = manager.request("GET", "/v1/volumes")
        assert st == 200 and vols == []
        st, _ = manager.request("DELETE", "/v1/storage/backends/" + b["id"])
        assert st == 204
    finally:
        subprocess.run(["umount", "-c", "-l", mnt])
        os.rmdir(mnt)


def test_wrong_rotation_keeps_old_password(manager, agent, smbd):
    st, b = manager.create_backend("rot", smb_config(smbd, "secure", user=True))
    assert st == 201, b
    cred = os.path.join(agent.cred_dir, b["id"] + ".cred")
    with open(cred, "rb") as f:
        before = f.read()
    st, r = manager.request("PATCH", "/v1/storage/backends/" + b["id"],
                            {"rotate_password": "definitely-wrong-" + uuid.uuid4().hex})
    assert st == 422 and r["error"]["code"] == "smb_auth_failed", r
    with open(cred, "rb") as f:
        assert f.read() == before
    assert not [n for n in os.listdir(agent.cred_dir) if n.endswith(".new")]
    # The live mount is untouched, and the old password still mounts.
    st, _ = agent.request("GET", "/v1/storage/smb/mounts/%s/capacity" % b["id"])
    assert st == 200
    st, _ = agent.request("DELETE", "/v1/storage/smb/mounts/" + b["id"])
    assert st == 204
    assert wait_for(lambda: agent.request(
        "GET", "/v1/storage/smb/mounts/%s/capacity" % b["id"])[0] == 200, timeout=30)
    assert wait_for(lambda: manager.backends()["rot"]["status"] == "ok", timeout=30)
    # The right password rotates.
    st, r = manager.request("PATCH", "/v1/storage/backends/" + b["id"],
                            {"rotate_password": smbd.password})
    assert st == 200, r
