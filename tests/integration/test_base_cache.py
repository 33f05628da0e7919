"""The base cache of an SMB backend (issue 13 §1), against real smbd through
the nqrust-smbfs bridge: the first volume from an image fills
<volume dir>/.nqrust-cache/<sha256>.raw (+ .extents), later volumes are
cloned from it by the server (copy_file_range -> smbc_splice -> SMB2
COPYCHUNK), so no image data crosses the client: the bridge's own socket
I/O (/proc/<bridge>/io rchar/wchar) proves it. Also: holes and size,
a changed image, two racing creates filling once, the fallback when the
server-side copy is refused (logged once), a stale fill marker, and the
agent's list/purge routes. The manager's routes are in
test_manager_storage-style tests at the end."""

import concurrent.futures
import os
import stat
import subprocess
import time

import pytest

from daemon import build_path, smbfs_pids, wait_for
from fixtures_agent import new_id

MiB = 1 << 20
IMG_SIZE = 64 * MiB
DATA = 8 * MiB
VOL_SIZE = 128 * MiB


def make_image(path, seed):
    """IMG_SIZE apparent bytes, DATA bytes of data in 4 extents."""
    per = DATA // 4
    with open(path, "wb") as f:
        f.truncate(IMG_SIZE)
        for i in range(4):
            f.seek(i * (IMG_SIZE // 4) + MiB)
            f.write(bytes([seed + i]) * 1024 + os.urandom(per - 1024))
    return path


def bridge_io(mount_point):
    """Bytes the bridge moved through its sockets and files so far."""
    total = 0
    pids = smbfs_pids(mount_point)
    assert pids, "no bridge serves " + mount_point
    for pid in pids:
        with open("/proc/%d/io" % pid) as f:
            for line in f:
                k, v = line.split(":")
                if k in ("rchar", "wchar"):
                    total += int(v)
    return total


def same_prefix(image, volume):
    with open(image, "rb") as a, open(volume, "rb") as b:
        while True:
            x = a.read(4 * MiB)
            if not x:
                break
            if b.read(len(x)) != x:
                return False
        rest = b.read()
    return rest.count(0) == len(rest)


def create(agent, bid, image, size=VOL_SIZE):
    vid = new_id()
    st, r = agent.request("POST", "/v1/storage/smb/volumes",
                          {"backend_id": bid, "volume_id": vid, "image": image,
                           "size_bytes": size})
    assert st == 201, r
    return vid, r


class Backend:
    def __init__(self, agent, smbd, extra=None):
        self.agent = agent
        self.id = new_id()
        self.sub = "bc-" + self.id[:8]
        opts = "port=%d" % smbd.port + ("," + extra if extra else "")
        st, r = agent.mount(backend_id=self.id, server=smbd.host, share="guest",
                            subdir=self.sub, mount_options=opts)
        assert st == 200, r
        self.mount_point = r["mount_point"]
        self.backing = os.path.join(smbd.shares["guest"], self.sub)
        self.cache = os.path.join(self.backing, ".nqrust-cache")

    def vol(self, vid):
        return os.path.join(self.backing, "smb-%s.raw" % vid)

    def cache_list(self):
        st, r = self.agent.request("GET", "/v1/storage/smb/mounts/%s/cache" % self.id)
        assert st == 200, r
        return r


@pytest.fixture(scope="module")
def bagent(gates_module):
    from fixtures_agent import Agent

    a = Agent().start()
    yield a
    a.cleanup()


def test_fill_then_clone_on_server(bagent, smbd):
    b = Backend(bagent, smbd)
    img = make_image(os.path.join(bagent.image_dir, "base.img"), 1)
    before = bridge_io(b.mount_point)
    v1, r1 = create(bagent, b.id, "base.img")
    # The fill crossed the client: the counter sees data when there is some.
    assert bridge_io(b.mount_point) - before >= DATA
    assert r1["base_cache"] == "filled" and r1["copy_method"] == "server_copy", r1
    entries = b.cache_list()
    assert len(entries) == 1, entries
    e = entries[0]
    h = e["hash"]
    assert len(h) == 64 and e["state"] == "ready" and e["images"] == ["base.img"]
    assert e["size_bytes"] == IMG_SIZE and e["in_use"] == 0
    assert e["allocated_bytes"] is None  # FUSE: the server's allocation is unknown
    assert e["created"].endswith("Z") and e["last_used"].endswith("Z")
    assert sorted(os.listdir(b.cache)) == [h + ".extents", h + ".raw"]
    # The second VM: cloned on the server, no image data through the client.
    before = bridge_io(b.mount_point)
    v2, r2 = create(bagent, b.id, "base.img")
    moved = bridge_io(b.mount_point) - before
    assert r2["base_cache"] == "hit" and r2["copy_method"] == "server_copy", r2
    assert r2["bytes_copied"] >= DATA
    assert moved < DATA // 8, "the bridge moved %d bytes for a cached clone" % moved
    for vid in (v1, v2):
        p = b.vol(vid)
        assert os.path.getsize(p) == VOL_SIZE
        # Holes stay holes: only the data extents are allocated.
        assert os.stat(p).st_blocks * 512 <= DATA + 4 * MiB
        assert same_prefix(img, p)
    assert os.stat(os.path.join(b.cache, h + ".raw")).st_blocks * 512 <= DATA + 4 * MiB
    # The cache is no volume: the listing shows the two volumes only.
    st, lst = bagent.request("GET", "/v1/storage/smb/volumes/" + b.id)
    assert st == 200 and sorted(x["volume_id"] for x in lst) == sorted([v1, v2])

    # A changed image gets its own entry; the old one stays.
    os.unlink(img)
    img = make_image(img, 50)
    v3, r3 = create(bagent, b.id, "base.img")
    assert r3["base_cache"] == "filled", r3
    assert same_prefix(img, b.vol(v3))
    hashes = sorted(x["hash"] for x in b.cache_list())
    assert len(hashes) == 2 and h in hashes

    # Purge: one entry by hash, then everything; bad and unknown hashes.
    base = "/v1/storage/smb/mounts/%s/cache" % b.id
    st, r = bagent.request("DELETE", base + "/" + h)
    assert st == 200 and r == {"removed": [h], "kept": []}, r
    st, r = bagent.request("DELETE", base + "/" + h)
    assert st == 404 and r["error"]["code"] == "not_found", r
    st, r = bagent.request("DELETE", base + "/" + "A" * 64)
    assert st == 400 and r["error"]["field"] == "hash", r
    # A dead fill's temp file goes with a purge of the whole cache.
    dead = os.path.join(b.cache, ".0123456789abcdef.raw.tmp-dead")
    open(dead, "wb").close()
    st, r = bagent.request("DELETE", base)
    assert st == 200 and len(r["removed"]) == 1 and r["kept"] == [], r
    assert not os.path.exists(dead)
    assert b.cache_list() == [] and not os.path.exists(b.cache)  # emptied: removed
    os.mkdir(b.cache)  # for the markers below (a create makes it again anyway)
    # Volumes cloned from purged entries are whole on their own.
    assert same_prefix(img, b.vol(v3))

    # A fill marker left by a dead filler (old, no temp file) is taken over.
    marker = os.path.join(b.cache, r["removed"][0] + ".filling")
    with open(marker, "w") as f:
        f.write(".gone.raw.tmp\n")
    old = time.time() - 3600
    os.utime(marker, (old, old))
    v4, r4 = create(bagent, b.id, "base.img")
    assert r4["base_cache"] == "filled", r4
    assert not os.path.exists(marker)
    assert same_prefix(img, b.vol(v4))

    # A fresh marker this agent left before it restarted (its id, another
    # process): nobody fills behind it, so the next create takes it over at
    # once instead of waiting two minutes for it to go stale.
    st, r = bagent.request("DELETE", base)
    assert st == 200 and len(r["removed"]) == 1, r
    with open(os.path.join(bagent.state_dir, "agent-id")) as f:
        me = f.read().strip()
    h = r["removed"][0]
    tmp = ".%s.raw.tmp-%s-deadbeef-0123456789ab" % (h[:16], me[:8])
    os.makedirs(b.cache, exist_ok=True)  # the purge removed it
    with open(os.path.join(b.cache, tmp), "wb") as f:
        f.write(b"\0" * 4096)
    with open(marker, "w") as f:
        f.write(tmp + "\n")
    t0 = time.monotonic()
    v5, r5 = create(bagent, b.id, "base.img")
    assert r5["base_cache"] == "filled", r5
    assert time.monotonic() - t0 < 60
    assert "fill marker this agent left before it restarted sha256=" + h in bagent.log()
    assert not os.path.exists(marker) and same_prefix(img, b.vol(v5))
    assert not os.path.exists(os.path.join(b.cache, tmp))


def fill_to(path, leave):
    """Write path until its file system has about leave bytes free."""
    d = os.path.dirname(path)
    sv = os.statvfs(d)
    n = sv.f_bavail * sv.f_frsize - leave
    with open(path, "wb") as f:
        while n > 0:
            k = min(n, MiB)
            f.write(b"\xee" * k)
            n -= k


def create_held_at_fill(agent, bid, image, gates, during):
    """A create held at the cache-fill gate (the entry's data written, not in
    place yet) while during() runs; its (volume id, reply)."""
    gates.arm("cache_fill")
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(create, agent, bid, image)
        try:
            gates.wait_reached("cache_fill")
            during()
        finally:
            gates.release("cache_fill")
        return fut.result(timeout=120)


def test_image_rewritten_during_the_fill_leaves_no_entry(bagent, smbd, gates_module):
    # The image changes while the cache copies it: the entry would carry the
    # old content's hash over mixed data, for every host to clone. It is not
    # kept; the create still makes its volume from the image as it is now.
    b = Backend(bagent, smbd)
    img = make_image(os.path.join(bagent.image_dir, "moving.img"), 21)
    def rewrite():
        with open(img, "r+b") as f:
            f.seek(MiB)
            f.write(b"rewritten while the cache copied it")

    v, r = create_held_at_fill(bagent, b.id, "moving.img", gates_module, rewrite)
    assert r["base_cache"] == "off" and r["copy_method"] == "client_copy", r
    assert "changed while it was copied" in bagent.log()
    assert [n for n in os.listdir(b.cache) if not n.startswith(".")] == [], os.listdir(b.cache)
    assert same_prefix(img, b.vol(v))
    # The next create hashes the new content and fills a good entry.
    v2, r2 = create(bagent, b.id, "moving.img")
    assert r2["base_cache"] == "filled", r2
    assert same_prefix(img, b.vol(v2))


def test_full_share_drops_or_skips_the_cache(bagent, gates_module):
    # A share nearly full: a cache entry beside the volume would make the
    # create fail where a plain copy fits. The entry just filled is removed
    # when the clone meets ENOSPC; with too little room it is not made. The
    # share is a 96 MiB tmpfs (its own smbd: the free space the server
    # reports is its share root's).
    from smbd import Smbd

    tight = Smbd()
    root = tight.shares["guest"]
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m,mode=0777", "tmpfs", root],
                   check=True)
    try:
        tight.start()
        b = Backend(bagent, tight)
        img = make_image(os.path.join(bagent.image_dir, "tight.img"), 11)
        # The entry (8 MiB) is written; the share fills up before the clone:
        # 4 MiB left.
        v1, r1 = create_held_at_fill(bagent, b.id, "tight.img", gates_module,
                                     lambda: fill_to(os.path.join(root, "filler"), 4 * MiB))
        assert r1["base_cache"] == "off" and r1["copy_method"] == "client_copy", r1
        assert same_prefix(img, b.vol(v1))
        assert "the share is full; removed the entry just filled" in bagent.log()
        assert os.listdir(b.cache) == [], os.listdir(b.cache)

        # 24 MiB of data with 88 MiB free: an entry and the volume do not
        # fit with the margin; the volume is copied, no entry is made.
        os.unlink(os.path.join(root, "filler"))
        big = os.path.join(bagent.image_dir, "tight24.img")
        with open(big, "wb") as f:
            f.write(os.urandom(24 * MiB))
        v2, r2 = create(bagent, b.id, "tight24.img", size=24 * MiB)
        assert r2["base_cache"] == "skipped" and r2["copy_method"] == "client_copy", r2
        assert os.listdir(b.cache) == [], os.listdir(b.cache)
        assert same_prefix(big, b.vol(v2))
        assert "base cache skipped backend_id=" + b.id in bagent.log()
        st, _ = bagent.request("DELETE", "/v1/storage/smb/mounts/" + b.id)
        assert st in (200, 204), _
    finally:
        gates_module.release("cache_fill")
        tight.stop()
        subprocess.run(["umount", "-l", root], check=False)


def test_hung_server_fails_the_clone_without_a_second_wait(agent_factory, gates_module):
    # The NAS stops answering during a clone from the cache: the create
    # fails with smb_unreachable after one request timeout; it does not go
    # on to copy the image through the same dead share (a second wait).
    import signal
    import threading

    from smbd import Smbd

    hung = Smbd().start()
    # Short deadlines: one request's wait (probe timeout 3 s, the bridge's
    # io_deadline 1 s from an 8 s lease) and a soft mount's grace of 4 s.
    a = agent_factory(extra_args=["--probe-timeout", "3", "--lease-seconds", "8"])
    try:
        b = Backend(a, hung, extra="timeout=4")  # a soft mount's grace: 4 s
        img = os.path.join(a.image_dir, "h.img")
        with open(img, "wb") as f:
            f.write(os.urandom(16 * MiB))
        create(a, b.id, "h.img", size=16 * MiB)  # fills the entry
        res = {}

        def second():
            t0 = time.monotonic()
            res["r"] = a.request("POST", "/v1/storage/smb/volumes",
                                 {"backend_id": b.id, "volume_id": new_id(),
                                  "image": "h.img"}, timeout=120)
            res["t"] = time.monotonic() - t0

        pids = [int(p) for p in subprocess.run(["pgrep", "-f", hung.conf], capture_output=True,
                                               text=True).stdout.split()]
        gates_module.arm("cache_clone")
        th = threading.Thread(target=second)
        th.start()
        try:
            gates_module.wait_reached("cache_clone")
            for p in pids:
                os.kill(p, signal.SIGSTOP)
            gates_module.release("cache_clone")
            th.join(60)
            assert not th.is_alive()
        finally:
            gates_module.release("cache_clone")
            for p in pids:
                os.kill(p, signal.SIGCONT)
            th.join(60)
        st, r = res["r"]
        assert st == 422 and r["error"]["code"] == "smb_unreachable", r
        assert "base cache: the share failed backend_id=" + b.id in a.log()
        assert "copying from the image" not in a.log()
        # Back: the next create clones from the cache on the server.
        assert wait_for(lambda: a.request("GET", "/v1/storage/smb/mounts")[0] == 200, timeout=30)
        _, r3 = create(a, b.id, "h.img", size=16 * MiB)
        assert r3["base_cache"] == "hit", r3
    finally:
        hung.stop()


def test_racing_creates_fill_once(bagent, agent_factory, smbd, gates_module):
    # Two hosts (two agents, each with its own mount of the share) create
    # from the same image at once: one fills, the other waits for it.
    b = Backend(bagent, smbd)
    other = agent_factory()
    st, r = other.mount(backend_id=b.id, server=smbd.host, share="guest",
                        subdir=b.sub, mount_options="port=%d" % smbd.port)
    assert st == 200, r
    img = make_image(os.path.join(bagent.image_dir, "race.img"), 90)
    os.link(img, os.path.join(other.image_dir, "race.img"))
    gates_module.arm("cache_fill")
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        first = ex.submit(create, bagent, b.id, "race.img")
        gates_module.wait_reached("cache_fill")
        # The entry is being filled: it is listed and cannot be purged.
        entries = b.cache_list()
        assert [e["state"] for e in entries] == ["filling"], entries
        assert entries[0]["in_use"] == 1
        st, r = bagent.request("DELETE", "/v1/storage/smb/mounts/%s/cache" % b.id)
        assert st == 200 and r["removed"] == [] and \
            r["kept"] == [{"hash": entries[0]["hash"], "reason": "filling"}], r
        second = ex.submit(create, other, b.id, "race.img")
        # It waits for the fill instead of filling again (the gate holds the
        # filler; give the second create ample time to do the wrong thing).
        time.sleep(1.5)
        assert not second.done()
        gates_module.release("cache_fill")
        (v1, r1), (v2, r2) = first.result(timeout=120), second.result(timeout=120)
    assert r1["base_cache"] == "filled" and r2["base_cache"] == "hit", (r1, r2)
    h = entries[0]["hash"]
    assert bagent.log().count("base cache entry filled sha256=" + h) == 1
    assert "base cache entry filled" not in other.log()
    for vid in (v1, v2):
        assert same_prefix(img, b.vol(vid))


@pytest.fixture(scope="module")
def gates_module(tmp_path_factory):
    from fixtures_gates import Gates

    d = tmp_path_factory.mktemp("gates")
    old = os.environ.get("NQRUST_DEBUG_GATE_DIR")
    os.environ["NQRUST_DEBUG_GATE_DIR"] = str(d)
    yield Gates(str(d))
    if old is None:
        os.environ.pop("NQRUST_DEBUG_GATE_DIR", None)
    else:
        os.environ["NQRUST_DEBUG_GATE_DIR"] = old
    for f in os.listdir(str(d)):
        os.unlink(os.path.join(str(d), f))


def test_refused_server_copy_falls_back_once(agent_factory, smbd, tmp_path):
    # A bridge that refuses copy_file_range (as a server without COPYCHUNK
    # makes it): volumes are still correct, the refusal is logged once.
    wrapper = tmp_path / "smbfs-refusing"
    wrapper.write_text("#!/bin/sh\nNQRUST_SMBFS_REFUSE_COPY=1 exec %s \"$@\"\n"
                       % build_path("nqrust-smbfs"))
    wrapper.chmod(stat.S_IRWXU)
    a = agent_factory(extra_args=["--smbfs-path", str(wrapper)])
    b = Backend(a, smbd)
    img = make_image(os.path.join(a.image_dir, "ref.img"), 120)
    v1, r1 = create(a, b.id, "ref.img")
    v2, r2 = create(a, b.id, "ref.img")
    assert r1["base_cache"] == "refused" and r1["copy_method"] == "client_copy", r1
    assert r2["base_cache"] == "off" and r2["copy_method"] == "client_copy", r2
    for vid in (v1, v2):
        p = b.vol(vid)
        assert os.path.getsize(p) == VOL_SIZE
        assert os.stat(p).st_blocks * 512 <= DATA + 4 * MiB
        assert same_prefix(img, p)
    assert a.log().count("refused a server-side copy backend_id=" + b.id) == 1
    # Purging the backend's cache is a fresh start: the next create tries a
    # server-side copy again (refused again here, and said again).
    st, r = a.request("DELETE", "/v1/storage/smb/mounts/%s/cache" % b.id)
    assert st == 200, r
    _, r3 = create(a, b.id, "ref.img")
    assert r3["base_cache"] == "refused", r3
    assert a.log().count("refused a server-side copy backend_id=" + b.id) == 2


def test_manager_lists_and_purges_the_cache(bagent, smbd):
    import json
    import subprocess

    from fixtures_manager import Manager, smb_config

    m = Manager(bagent, engine="sqlite").start()
    try:
        sub = "mc-" + new_id()[:8]
        st, b = m.create_backend("cached", smb_config(smbd, subdir=sub))
        assert st == 201, b
        make_image(os.path.join(bagent.image_dir, "mgr.img"), 140)
        for _ in range(2):
            st, v = m.request("POST", "/v1/volumes", {"backend_id": b["id"],
                                                      "image": "mgr.img"})
            assert st == 201, v
        st, entries = m.request("GET", "/v1/storage/backends/%s/cache" % b["id"])
        assert st == 200 and len(entries) == 1, entries
        h = entries[0]["hash"]
        assert entries[0]["images"] == ["mgr.img"] and entries[0]["in_use"] == 0
        # A localfile backend has no cache; unknown backends and bad hashes.
        st, r = m.request("GET", "/v1/storage/backends/localfile-default/cache")
        assert st == 200 and r == [], r
        st, r = m.request("GET", "/v1/storage/backends/%s/cache" % new_id())
        assert st == 404 and r["error"]["code"] == "not_found", r
        st, r = m.request("DELETE", "/v1/storage/backends/%s/cache/xyz" % b["id"])
        assert st == 400 and r["error"]["field"] == "hash", r
        # The CLI: list, then purge by name and hash.
        env = {"PATH": "/usr/bin:/bin", "HOME": bagent.root, "NQRUST_URL": m.url,
               "NQRUST_TOKEN": m.token}

        def cli(*args):
            r = subprocess.run([build_path("nqrust")] + list(args), env=env,
                               capture_output=True, text=True, timeout=60)
            return r.returncode, r.stdout, r.stderr

        rc, out, err = cli("backend", "cache", "list", "cached")
        assert rc == 0 and h in out and "mgr.img" in out, (out, err)
        rc, out, err = cli("backend", "cache", "purge")
        assert rc == 2 and "usage" in err
        rc, out, err = cli("--json", "backend", "cache", "purge", "cached", h)
        assert rc == 0 and json.loads(out) == {"removed": [h], "kept": []}, (out, err)
        rc, out, err = cli("backend", "cache", "purge", "cached", h)
        assert rc == 1 and "not_found" in err, (out, err)
        st, entries = m.request("GET", "/v1/storage/backends/%s/cache" % b["id"])
        assert st == 200 and entries == []
        st, ev = m.request("GET", "/v1/events?action=backend.cache_purged")
        assert st == 200, ev
        ev = ev if isinstance(ev, list) else ev.get("events", ev)
        outcomes = sorted(e["outcome"] for e in ev if e["object_id"] == b["id"])
        assert outcomes == ["failed", "ok"], ev
        # Removing the backend takes its cache along (ours, not the
        # operator's data); the volumes had to go first.
        st, v = m.request("POST", "/v1/volumes", {"backend_id": b["id"], "image": "mgr.img"})
        assert st == 201, v
        cache_dir = os.path.join(smbd.shares["guest"], sub, ".nqrust-cache")
        assert os.listdir(cache_dir)
        st, vols = m.request("GET", "/v1/volumes")
        for x in vols:
            if x.get("backend_id") == b["id"]:
                assert m.request("DELETE", "/v1/volumes/" + x["id"])[0] == 204
        st, r = m.request("DELETE", "/v1/storage/backends/" + b["id"])
        assert st == 204, r
        assert not os.path.exists(cache_dir), os.listdir(cache_dir)
    finally:
        m.cleanup()


def test_bridge_copy_file_range_is_server_side(mounter, smbd):
    # The bridge's copy_file_range on its own: ranges at offsets, the
    # source's end, no data through the client, refusal with EINVAL.
    mp = mounter.mount("//127.0.0.1/guest", "guest,port=%d" % smbd.port)
    data = os.urandom(3 * MiB)
    with open(os.path.join(mp, "cfr-src"), "wb") as f:
        f.write(data)
    fi = os.open(os.path.join(mp, "cfr-src"), os.O_RDONLY)
    fo = os.open(os.path.join(mp, "cfr-dst"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        before = bridge_io(mp)
        assert os.copy_file_range(fi, fo, 2 * MiB, 512 * 1024, MiB) == 2 * MiB
        moved = bridge_io(mp) - before
        assert moved < 64 * 1024, moved
        # Past the source's end: the kernel clamps to what there is.
        assert os.copy_file_range(fi, fo, 4 * MiB, 2 * MiB, 3 * MiB) == MiB
        # Within one open file: refused so the caller copies itself.
        with pytest.raises(OSError) as e:
            os.copy_file_range(fo, fo, 1024, 0, 5 * MiB)
        assert e.value.errno == 22
        os.fsync(fo)
    finally:
        os.close(fi)
        os.close(fo)
    with open(os.path.join(smbd.shares["guest"], "cfr-dst"), "rb") as f:
        got = f.read()
    assert len(got) == 4 * MiB
    assert got[:MiB] == bytes(MiB)
    assert got[MiB:3 * MiB] == data[512 * 1024:512 * 1024 + 2 * MiB]
    assert got[3 * MiB:] == data[2 * MiB:]
