"""Localfile backends on the agent (/v1/storage/localfile/*): directories
confined below --local-root, sparse clones local-<id>.raw, capacity,
records that survive a restart, and VMs whose rootfs is a local file."""

import filecmp
import os
import stat
import subprocess

import pytest

from fixtures_agent import new_id
from fixtures_vm import mount_backend, proc_running

MiB = 1 << 20
GiB = 1 << 30


def local_root(agent):
    return os.path.join(agent.mount_root, "local")


def attach(agent, bid, path=None):
    return agent.request("PUT", "/v1/storage/localfile/backends/" + bid,
                         {} if path is None else {"path": path})


def du_bytes(path):
    out = subprocess.run(["du", "-s", "--block-size=1", path], capture_output=True,
                         text=True, check=True).stdout
    return int(out.split()[0])


def make_sparse_image(path, size=GiB, data=32 * MiB, chunks=8):
    per, step = data // chunks, size // chunks
    with open(path, "wb") as f:
        f.truncate(size)
        for i in range(chunks):
            f.seek(i * step)
            f.write(os.urandom(per))
    return path


def snapshot(root):
    out = set()
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            out.add(os.path.join(d, n))
    return out


def test_default_backend_clone_list_delete(agent):
    st, r = attach(agent, "localfile-default")
    assert st == 200, r
    assert r == {"backend_id": "localfile-default", "volume_dir": local_root(agent)}
    assert stat.S_IMODE(os.stat(local_root(agent)).st_mode) == 0o700
    img = make_sparse_image(os.path.join(agent.image_dir, "base.raw"))
    vid = new_id()
    st, v = agent.request("POST", "/v1/storage/localfile/volumes",
                          {"backend_id": "localfile-default", "volume_id": vid,
                           "image": "base.raw"})
    assert st == 201, v
    path = os.path.join(local_root(agent), "local-%s.raw" % vid)
    assert v["path"] == path and v["size_bytes"] == GiB
    # Only the data was written, and the agent reports the real allocation.
    assert v["bytes_copied"] == 32 * MiB
    assert v["allocated_bytes"] == os.stat(path).st_blocks * 512
    assert du_bytes(path) <= 36 * MiB
    assert filecmp.cmp(img, path, shallow=False)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    st, r = agent.request("POST", "/v1/storage/localfile/volumes",
                          {"backend_id": "localfile-default", "volume_id": vid,
                           "image": "base.raw"})
    assert st == 409 and r["error"]["code"] == "volume_exists", r
    empty = new_id()
    st, r = agent.request("POST", "/v1/storage/localfile/volumes",
                          {"backend_id": "localfile-default", "volume_id": empty,
                           "size_bytes": 8 * MiB})
    assert st == 201 and r["size_bytes"] == 8 * MiB and r["allocated_bytes"] == 0, r

    st, vols = agent.request("GET", "/v1/storage/localfile/volumes/localfile-default")
    assert st == 200
    assert sorted(x["volume_id"] for x in vols) == sorted([vid, empty])
    st, cap = agent.request("GET",
                            "/v1/storage/localfile/backends/localfile-default/capacity")
    sv = os.statvfs(local_root(agent))
    assert st == 200 and cap["total_bytes"] == sv.f_blocks * sv.f_frsize, cap
    assert 0 < cap["free_bytes"] <= cap["total_bytes"]

    for _ in range(2):  # idempotent
        st, _ = agent.request("DELETE", "/v1/storage/localfile/volumes/"
                              "localfile-default/" + vid)
        assert st == 204
    assert not os.path.exists(path)
    # An SMB route never touches localfile volumes and the reverse.
    st, r = agent.request("GET", "/v1/storage/smb/volumes/localfile-default")
    assert st == 400 and r["error"]["field"] == "backend_id", r


def test_custom_dir_restart_and_detach(agent):
    bid = new_id()
    want = os.path.join(local_root(agent), "fast", "vms")
    st, r = attach(agent, bid, want)
    assert st == 200 and r["volume_dir"] == want, r
    assert stat.S_IMODE(os.stat(want).st_mode) == 0o700
    vid = new_id()
    st, v = agent.request("POST", "/v1/storage/localfile/volumes",
                          {"backend_id": bid, "volume_id": vid, "size_bytes": MiB})
    assert st == 201 and v["path"] == os.path.join(want, "local-%s.raw" % vid), v
    agent.restart()
    st, lst = agent.request("GET", "/v1/storage/localfile/backends")
    assert st == 200 and {"backend_id": bid, "volume_dir": want} in lst, lst
    st, vols = agent.request("GET", "/v1/storage/localfile/volumes/" + bid)
    assert st == 200 and [x["volume_id"] for x in vols] == [vid]
    for _ in range(2):
        st, _ = agent.request("DELETE", "/v1/storage/localfile/backends/" + bid)
        assert st == 204
    assert os.path.exists(v["path"])  # the files stay
    st, r = agent.request("GET", "/v1/storage/localfile/volumes/" + bid)
    assert st == 404 and r["error"]["code"] == "not_found", r
    st, r = agent.request("POST", "/v1/storage/localfile/volumes",
                          {"backend_id": bid, "volume_id": new_id(), "size_bytes": MiB})
    assert st == 404 and r["error"]["field"] == "backend_id", r


def test_hostile_paths_are_refused_and_touch_nothing(agent, tmp_path):
    root = local_root(agent)
    attach(agent, "localfile-default")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), os.path.join(root, "escape"))
    before = snapshot(agent.root) | snapshot(str(tmp_path))
    bid = new_id()
    cases = [
        ({"path": "/etc"}, "path"),
        ({"path": agent.mount_root}, "path"),
        ({"path": root + "/../smb"}, "path"),
        ({"path": root + "/"}, "path"),
        ({"path": "relative/dir"}, "path"),
        ({"path": root + "/a\nb"}, "path"),
        ({"path": root + "/escape/x"}, "path"),
        ({"path": root + "/escape"}, "path"),
        ({"path": 7}, "path"),
        ({"path": root, "extra": 1}, "extra"),
    ]
    for body, field in cases:
        st, r = agent.request("PUT", "/v1/storage/localfile/backends/" + bid, body)
        assert st == 400 and r["error"]["field"] == field, (body, r)
    st, r = agent.request("PUT", "/v1/storage/localfile/backends/../../etc", {})
    assert st in (400, 404), r
    for bad in ("Upper", ".hidden", "a_b", "x" * 37):
        st, r = attach(agent, bad)
        assert st == 400 and r["error"]["field"] == "backend_id", (bad, r)
    st, r = agent.request("PUT", "/v1/storage/localfile/backends/" + bid, raw=b"",
                          headers={"Content-Type": "application/json"})
    assert st == 400, r
    assert snapshot(agent.root) | snapshot(str(tmp_path)) == before
    assert os.listdir(str(outside)) == []
    st, lst = agent.request("GET", "/v1/storage/localfile/backends")
    assert [x["backend_id"] for x in lst] == ["localfile-default"]
    for body, field in [({"backend_id": "localfile-default", "volume_id": "x",
                          "size_bytes": 1}, "volume_id"),
                        ({"backend_id": "localfile-default", "volume_id": new_id(),
                          "image": "../../etc/passwd"}, "image"),
                        ({"backend_id": "localfile-default", "volume_id": new_id()},
                         "size_bytes")]:
        st, r = agent.request("POST", "/v1/storage/localfile/volumes", body)
        assert st == 400 and r["error"]["field"] == field, (body, r)


def test_share_mount_is_not_a_local_dir(agent_factory, smbd):
    """With the local root spanning the SMB mount base, a directory on the
    mounted share is still refused: that storage is an smb backend."""
    a = agent_factory(extra_args=["--local-root", "/"])
    _, m = mount_backend(a, smbd)
    st, r = attach(a, new_id(), m["volume_dir"])
    assert st == 400 and r["error"]["field"] == "path", r
    assert "smb backend" in r["error"]["message"]


def test_vm_on_localfile(vm_agent, fake_fc):
    attach(vm_agent, "localfile-default")
    with open(os.path.join(vm_agent.image_dir, "rootfs.ext4"), "wb") as f:
        f.truncate(16 * MiB)
        f.write(b"rootfs!")
    vid = new_id()
    st, v = vm_agent.request("POST", "/v1/storage/localfile/volumes",
                             {"backend_id": "localfile-default", "volume_id": vid,
                              "image": "rootfs.ext4"})
    assert st == 201, v
    body = {"id": new_id(), "backend_kind": "localfile", "backend_id": "localfile-default",
            "volume_id": vid, "vcpus": 1, "memory_mib": 128, "kernel": "vmlinux"}
    st, r = vm_agent.request("POST", "/v1/vms", dict(body, backend_kind="nfs"))
    assert st == 400 and r["error"]["field"] == "backend_kind", r
    # The same ids as an smb backend: no such volume there.
    st, r = vm_agent.request("POST", "/v1/vms", dict(body, backend_kind="smb"))
    assert st == 400 and r["error"]["field"] == "backend_id", r
    st, vm = vm_agent.request("POST", "/v1/vms", body)
    assert st == 201, vm
    assert vm["rootfs"] == v["path"] and vm["backend_kind"] == "localfile"
    drive = [q for q in fake_fc.requests(vm["id"]) if q["path"] == "/drives/rootfs"]
    assert drive[0]["body"]["path_on_host"] == v["path"]
    vm_agent.restart()
    assert proc_running(vm["pid"])
    for action, state in (("stop", "stopped"), ("start", "running")):
        st, r = vm_agent.request("POST", "/v1/vms/%s/%s" % (vm["id"], action))
        assert st == 200 and r["state"] == state, (action, r)
    assert r["rootfs"] == v["path"]
    st, _ = vm_agent.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204
    st, _ = vm_agent.request("DELETE", "/v1/storage/localfile/volumes/localfile-default/"
                             + vid)
    assert st == 204 and not os.path.exists(v["path"])
