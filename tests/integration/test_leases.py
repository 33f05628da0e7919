"""Volume leases (docs/leases.md): two agents on this machine, each with its
own state dir, mount root and socket, attached to one real smbd share
through the FUSE bridge, running VMs with the fake Firecracker. Never two
writers: a VM's lease file on the share keeps the other agent from
starting it, and an agent that cannot renew kills its own VMM before the
lease expires."""

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from daemon import proc_running, smbfs_pids, wait_for
from fixtures_agent import Agent, new_id
from fixtures_vm import create, kill_vmms, put_image

LEASE_S = 8  # renew every 1 s; fence 2 renew intervals before expiry


def start_agent(fake_fc, host, lease_s=LEASE_S):
    a = Agent(extra_args=["--firecracker-path", fake_fc.path, "--lease-seconds",
                          str(lease_s), "--host-name", host]).start()
    put_image(a, "vmlinux", 0, b"\x7fELF fake kernel for the fake firecracker")
    return a


@pytest.fixture
def pair(fake_fc):
    made = []
    try:
        made.append(start_agent(fake_fc, "host-a"))
        made.append(start_agent(fake_fc, "host-b"))
        yield made
    finally:
        for a in made:
            for pid in smbfs_pids(a.mount_root, live=False):
                try:
                    os.kill(pid, signal.SIGCONT)
                except OSError:
                    pass
        for a in made:
            if a.proc is None or a.proc.poll() is not None:
                a.start()
            kill_vmms(a)
            a.cleanup()


class Shared:
    """One backend (same id, same subdir) attached on both agents, and a
    volume on it cloned by A."""

    def __init__(self, a, b, smbd):
        self.a, self.b, self.smbd = a, b, smbd
        self.bid = new_id()
        body = dict(backend_id=self.bid, server=smbd.host, share="guest",
                    subdir="vms-" + self.bid[:8], mount_options="port=%d" % smbd.port)
        st, self.ma = a.mount(**body)
        assert st == 200, self.ma
        st, self.mb = b.mount(**body)
        assert st == 200, self.mb
        put_image(a)
        self.vid = new_id()
        st, r = a.request("POST", "/v1/storage/smb/volumes",
                          {"backend_id": self.bid, "volume_id": self.vid,
                           "image": "rootfs.ext4"})
        assert st == 201, r
        self.dir = os.path.join(smbd.shares["guest"], "vms-" + self.bid[:8])
        self.lease_path = os.path.join(self.dir, ".smb-%s.lease" % self.vid)
        self.vm_id = new_id()

    def create(self, agent, **kw):
        return create(agent, self.bid, self.vid, id=self.vm_id, **kw)

    def lease(self):
        """The lease file's content as on the server's disk, or None. A
        renewal through libsmbclient renames over the lease as an unlink
        and a rename: look again a few times before saying "none"."""
        for _ in range(20):
            try:
                with open(self.lease_path) as f:
                    return json.load(f)
            except FileNotFoundError:
                time.sleep(0.01)
        return None


def vmm_killed(pid):
    """pid is gone, a zombie, or exiting (PF_EXITING: its memory is gone and
    it runs no user code any more; its last close may wait on the hung
    mount until the bridge answers again)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return rest[0] in ("Z", "X") or (int(rest[6]) & 0x4) != 0


def agent_id(agent):
    with open(os.path.join(agent.state_dir, "agent-id")) as f:
        return f.read().strip()


def now_ms():
    return int(time.time() * 1000)


def vm(agent, vm_id):
    st, r = agent.request("GET", "/v1/vms/" + vm_id)
    assert st == 200, r
    return r


def test_lease_held_renewed_refused_released(pair, fake_fc, smbd):
    a, b = pair
    s = Shared(a, b, smbd)
    assert s.lease() is None
    st, v = s.create(a)
    assert st == 201 and v["state"] == "running", v
    assert v["fenced"] is False and v["lease"]["state"] == "held", v
    first = s.lease()
    assert first["agent_id"] == agent_id(a) and first["host_name"] == "host-a"
    assert first["vm_id"] == s.vm_id and first["volume_id"] == s.vid
    assert first["expires_at_ms"] - first["renewed_at_ms"] == LEASE_S * 1000
    # Renewed every second: renewed_at_ms and generation advance.
    later = wait_for(lambda: (lambda l: l if l and l["generation"] >= first["generation"] + 2
                              else None)(s.lease()), timeout=30, interval=0.1)
    assert later and later["renewed_at_ms"] > first["renewed_at_ms"], later
    assert vm(a, s.vm_id)["lease"]["expires_at_ms"] >= later["expires_at_ms"] - 2000

    # B refuses: same VM, same volume; its VMM never starts.
    n_reqs = len(fake_fc.requests(s.vm_id))
    st, r = s.create(b)
    assert st == 409 and r["error"]["code"] == "volume_leased", r
    assert "leased by host host-a" in r["error"]["message"], r
    assert "more seconds" in r["error"]["message"], r
    assert len(fake_fc.requests(s.vm_id)) == n_reqs
    st, r = b.request("GET", "/v1/vms/" + s.vm_id)
    assert st == 404, r
    # Created stopped on B, a start is refused the same way.
    st, r = s.create(b, start=False)
    assert st == 201 and r["state"] == "stopped" and r["lease"]["state"] == "none", r
    st, r = b.request("POST", "/v1/vms/%s/start" % s.vm_id)
    assert st == 409 and r["error"]["code"] == "volume_leased", r
    st, r = b.request("POST", "/v1/vms/%s/restart" % s.vm_id)
    assert st == 409 and r["error"]["code"] == "volume_leased", r

    # A stops: the lease is gone at once; B starts it and holds it.
    st, r = a.request("POST", "/v1/vms/%s/stop" % s.vm_id)
    assert st == 200 and r["state"] == "stopped" and r["lease"]["state"] == "none", r
    assert s.lease() is None
    st, r = b.request("POST", "/v1/vms/%s/start" % s.vm_id)
    assert st == 200 and r["state"] == "running", r
    assert s.lease()["agent_id"] == agent_id(b)
    st, r = a.request("POST", "/v1/vms/%s/start" % s.vm_id)
    assert st == 409 and "leased by host host-b" in r["error"]["message"], r
    # Delete releases too; no temp file is left behind.
    st, _ = b.request("DELETE", "/v1/vms/" + s.vm_id)
    assert st == 204 and s.lease() is None
    assert not [n for n in os.listdir(s.dir) if ".lease" in n], os.listdir(s.dir)


def test_revert_holds_the_lease(gates, pair, fake_fc, smbd):
    """A revert replaces a VM's disk: it is refused while another host
    holds the volume's lease, and takes the lease itself meanwhile."""
    a, b = pair
    s = Shared(a, b, smbd)
    snap = new_id()
    base = "/v1/storage/smb/volumes/%s/" % s.bid
    st, r = a.request("POST", base + snap + "/copy", {"source_volume_id": s.vid})
    assert st == 201, r
    disk = os.path.join(s.dir, "smb-%s.raw" % s.vid)
    with open(disk, "r+b") as f:  # the disk moves on after the snapshot
        f.write(b"after the snapshot")
    st, v = s.create(a)
    assert st == 201 and v["state"] == "running", v
    st, r = b.request("POST", base + s.vid + "/revert", {"source_volume_id": snap})
    assert st == 409 and r["error"]["code"] == "volume_leased", r
    assert "host-a" in r["error"]["message"] and r["error"]["field"] == "volume_id", r
    st, r = a.request("POST", base + s.vid + "/revert", {"source_volume_id": snap})
    assert st == 409 and r["error"]["code"] == "invalid_state", r
    with open(disk, "rb") as f:
        assert f.read(18) == b"after the snapshot"
    assert s.lease()["agent_id"] == agent_id(a)

    st, r = a.request("POST", "/v1/vms/%s/stop" % s.vm_id)
    assert st == 200 and s.lease() is None, r
    # While B reverts (held at a gate after the copy), A cannot start the VM.
    gates.arm("volume-copy")
    res = {}
    t = threading.Thread(target=lambda: res.setdefault("r", b.request(
        "POST", base + s.vid + "/revert", {"source_volume_id": snap})))
    t.start()
    try:
        gates.wait_reached("volume-copy")
        st, r = a.request("POST", "/v1/vms/%s/start" % s.vm_id)
        assert st == 409 and r["error"]["code"] == "volume_leased", r
        assert "being reverted by host host-b" in r["error"]["message"], r
    finally:
        gates.release("volume-copy")
        t.join(60)
    st, r = res["r"]
    assert st == 200, r
    with open(disk, "rb") as f:
        assert f.read(18) != b"after the snapshot"
    # Released with the revert: A starts the VM again at once.
    assert s.lease() is None
    assert not [n for n in os.listdir(s.dir) if ".lease" in n], os.listdir(s.dir)
    st, r = a.request("POST", "/v1/vms/%s/start" % s.vm_id)
    assert st == 200 and r["state"] == "running", r
    assert "lease taken vm_id=%s volume_id=%s" % (s.vid, s.vid) in b.log()


def lease_gen(path):
    """The generation of the lease at path; a record rewritten in place may
    be read half-written: read again."""
    for _ in range(50):
        try:
            with open(path) as f:
                return json.load(f)["generation"]
        except ValueError:
            time.sleep(0.01)
    raise AssertionError("no whole lease record in %s" % path)


def fill(path):
    """Write path until its file system has not a byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (65536, 512, 1):
            try:
                while True:
                    os.write(fd, b"\xff" * size)
            except OSError:
                pass
    finally:
        os.close(fd)


def test_full_share_keeps_renewing_in_place(pair, fake_fc, smbd):
    """A full share has no room for a new lease file: the renewal rewrites
    the lease in place, so the VM keeps running (its writes fail until space
    is freed) instead of fencing itself; a start there is 507 no_space."""
    a, b = pair
    bid = new_id()
    sub = "vms-" + bid[:8]
    d = os.path.join(smbd.shares["guest"], sub)
    os.makedirs(d)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0777", "tmpfs", d],
                   check=True)
    try:
        st, m = a.mount(backend_id=bid, server=smbd.host, share="guest", subdir=sub,
                        mount_options="port=%d" % smbd.port)
        assert st == 200, m
        put_image(a)
        vid, vm_id = new_id(), new_id()
        st, r = a.request("POST", "/v1/storage/smb/volumes",
                          {"backend_id": bid, "volume_id": vid, "image": "rootfs.ext4"})
        assert st == 201, r
        st, v = create(a, bid, vid, id=vm_id)
        assert st == 201 and v["state"] == "running", v
        lease_path = os.path.join(d, ".smb-%s.lease" % vid)
        filler = os.path.join(d, "filler")
        fill(filler)
        assert os.statvfs(d).f_bavail == 0
        gen = lease_gen(lease_path)
        # Longer than the lease (8 s): without the in-place renewal the
        # agent would have fenced the VM by now.
        time.sleep(LEASE_S + 2)
        assert vm(a, vm_id)["state"] == "running"
        assert vm(a, vm_id)["fenced"] is False
        assert lease_gen(lease_path) >= gen + 3
        assert "lease renewed in place vm_id=%s" % vm_id in a.log()
        assert not [n for n in os.listdir(d) if n.endswith(".tmp")], os.listdir(d)
        # Starting another VM on a full share: the lease cannot be made.
        vid2 = new_id()
        os.truncate(filler, os.path.getsize(filler) - 256 * 1024)
        st, r = a.request("POST", "/v1/storage/smb/volumes",
                          {"backend_id": bid, "volume_id": vid2, "size_bytes": 1 << 20})
        assert st == 201, r
        fill(os.path.join(d, "filler2"))
        st, r = create(a, bid, vid2)
        assert st == 507 and r["error"]["code"] == "no_space", r
        # Room again: renewals go back to a new file and a rename.
        os.unlink(filler)
        assert wait_for(lambda: "lease renewed normally again vm_id=%s" % vm_id in a.log(),
                        timeout=30, interval=0.2)
        st, r = a.request("POST", "/v1/vms/%s/stop" % vm_id)
        assert st == 200, r
    finally:
        kill_vmms(a)
        subprocess.run(["umount", "-l", d], check=False)


def test_guest_exit_releases_and_restart_keeps_renewing(pair, fake_fc, smbd):
    a, b = pair
    s = Shared(a, b, smbd)
    st, v = s.create(a)
    assert st == 201, v
    # An agent restart adopts the VMM and keeps renewing its lease.
    a.restart()
    g = s.lease()["generation"]
    assert wait_for(lambda: s.lease()["generation"] >= g + 2, timeout=30, interval=0.1)
    assert vm(a, s.vm_id)["state"] == "running"
    assert s.lease()["agent_id"] == agent_id(a)
    # The guest powers off (SendCtrlAltDel straight to the fake's socket
    # would be a stop; kill the VMM with a clean exit code instead).
    os.kill(v["pid"], signal.SIGTERM)
    assert wait_for(lambda: s.lease() is None, timeout=30, interval=0.1)
    st, r = s.create(b)
    assert st == 201 and r["state"] == "running", r


def test_self_fencing_before_expiry(pair, fake_fc, smbd):
    a, b = pair
    s = Shared(a, b, smbd)
    st, v = s.create(a)
    assert st == 201, v
    pid = v["pid"]
    g = s.lease()["generation"]
    assert wait_for(lambda: s.lease()["generation"] > g, timeout=30, interval=0.1)
    bridges = smbfs_pids(s.ma["mount_point"])
    assert bridges
    for p in bridges:
        os.kill(p, signal.SIGSTOP)  # A cannot reach the share any more
    try:
        gone_at = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if vmm_killed(pid):
                gone_at = now_ms()
                break
            time.sleep(0.02)
        assert gone_at, "A's VMM was not fenced:\n" + a.log()[-3000:]
        last = s.lease()  # nothing can change it now: A is cut off
        assert last["agent_id"] == agent_id(a)
        assert gone_at < last["expires_at_ms"], (gone_at, last)
        r = wait_for(lambda: (lambda x: x if x["state"] == "error" else None)(
            vm(a, s.vm_id)), timeout=30)
        assert r and r["fenced"] is True, r
        assert r["error"] == "fenced: the lease on the share could not be renewed", r
        assert r["last_exit"]["reason"] == ("killed by the agent: its lease on the "
                                           "share could not be renewed (self-fencing)"), r
        assert r["lease"]["state"] == "lost", r
        # B: refused until the lease expires, then it starts.
        st, r = s.create(b, start=False)
        assert st == 201, r
        sent = now_ms()
        st, r = b.request("POST", "/v1/vms/%s/start" % s.vm_id)
        if sent < last["expires_at_ms"] - 1000:  # (fenced 2 s before expiry)
            assert st == 409 and r["error"]["code"] == "volume_leased", r
        st, r = wait_for(lambda: (lambda x: x if x[0] == 200 else None)(
            b.request("POST", "/v1/vms/%s/start" % s.vm_id)), timeout=60, interval=0.2)
        assert st == 200 and r["state"] == "running", r
        assert now_ms() >= last["expires_at_ms"]
        assert s.lease()["agent_id"] == agent_id(b)
    finally:
        for p in bridges:
            os.kill(p, signal.SIGCONT)
    # A comes back: it does not restart the VM, not even after a restart.
    g = s.lease()["generation"]
    assert wait_for(lambda: s.lease()["generation"] >= g + 2, timeout=30, interval=0.1)
    r = vm(a, s.vm_id)
    assert r["state"] == "error" and r["fenced"] is True and r["pid"] is None, r
    a.restart()
    r = vm(a, s.vm_id)
    assert r["state"] == "error" and r["fenced"] is True, r
    assert s.lease()["agent_id"] == agent_id(b)
    st, r = a.request("POST", "/v1/vms/%s/start" % s.vm_id)
    assert st == 409 and "leased by host host-b" in r["error"]["message"], r


def test_crashed_agent_lease_taken_over_after_expiry(pair, fake_fc, smbd):
    a, b = pair
    s = Shared(a, b, smbd)
    st, v = s.create(a)
    assert st == 201, v
    a.proc.kill()
    a.proc.wait()
    os.kill(v["pid"], signal.SIGKILL)
    last = s.lease()
    assert last["agent_id"] == agent_id(a)
    sent = now_ms()
    st, r = s.create(b, start=False)
    assert st == 201, r
    st, r = b.request("POST", "/v1/vms/%s/start" % s.vm_id)
    assert sent < last["expires_at_ms"] - 1000  # a kill takes milliseconds
    assert st == 409 and r["error"]["code"] == "volume_leased", r
    assert "host-a" in r["error"]["message"], r
    st, r = wait_for(lambda: (lambda x: x if x[0] == 200 else None)(
        b.request("POST", "/v1/vms/%s/start" % s.vm_id)), timeout=60, interval=0.2)
    assert st == 200 and r["state"] == "running", r
    assert now_ms() >= last["expires_at_ms"]
    took = s.lease()
    assert took["agent_id"] == agent_id(b) and took["generation"] > last["generation"]
    assert not [n for n in os.listdir(s.dir) if n.endswith(".stale")]


@pytest.mark.parametrize("content,why", [
    (b"\x00\xffgarbage{", "not JSON"),
    (b"[1, 2, 3]", "not a JSON object"),
    ("huge", "too large"),
    (None, "agent_id"),  # wrong types
    ("absurd", "too far in the future"),
], ids=["garbage", "array", "huge", "wrong-types", "absurd-expiry"])
def test_corrupt_lease_is_held_then_taken_over(pair, fake_fc, smbd, content, why):
    a, b = pair
    s = Shared(a, b, smbd)
    if content == "huge":
        content = b" " * (1 << 20)
    elif content is None:
        content = json.dumps({"agent_id": 5, "host_name": ["x"], "vm_id": None,
                              "volume_id": s.vid, "expires_at_ms": "soon",
                              "renewed_at_ms": 1, "generation": 1}).encode()
    elif content == "absurd":
        content = json.dumps({"agent_id": new_id(), "host_name": "evil",
                              "vm_id": new_id(), "volume_id": s.vid,
                              "expires_at_ms": now_ms() + 10 ** 12,
                              "renewed_at_ms": now_ms(), "generation": 1}).encode()
    with open(s.lease_path, "wb") as f:
        f.write(content)
    st, r = s.create(b, start=False)
    assert st == 201, r
    st, r = b.request("POST", "/v1/vms/%s/start" % s.vm_id)
    assert st == 409 and r["error"]["code"] == "volume_leased", r
    assert "corrupt lease file" in r["error"]["message"] and why in r["error"]["message"], r
    assert b.proc.poll() is None
    # Unwritten for longer than the bound (10 × lease_seconds for an
    # absurd expiry): then it is taken over.
    old = time.time() - 11 * LEASE_S
    os.utime(s.lease_path, (old, old))
    st, r = wait_for(lambda: (lambda x: x if x[0] == 200 else None)(
        b.request("POST", "/v1/vms/%s/start" % s.vm_id)), timeout=30, interval=0.5)
    assert st == 200 and r["state"] == "running", r
    assert s.lease()["agent_id"] == agent_id(b)


def test_localfile_vm_takes_no_lease(pair, fake_fc):
    a, _ = pair
    vid = new_id()
    put_image(a)
    st, r = a.request("PUT", "/v1/storage/localfile/backends/localfile-default", {})
    assert st == 200, r
    st, v = a.request("POST", "/v1/storage/localfile/volumes",
                      {"backend_id": "localfile-default", "volume_id": vid,
                       "image": "rootfs.ext4"})
    assert st == 201, v
    st, r = create(a, "localfile-default", vid, backend_kind="localfile")
    assert st == 201 and r["lease"] == {"state": "none", "expires_at_ms": None}, r
    d = os.path.dirname(v["path"])
    assert not [n for n in os.listdir(d) if ".lease" in n]


def test_lease_seconds_is_validated(fake_fc):
    for bad in ("2", "301", "x"):
        a = Agent(extra_args=["--lease-seconds", bad])
        with pytest.raises(RuntimeError) as e:
            a.start(timeout=10)
        assert "lease_seconds" in str(e.value), str(e.value)
        a.check_exit = False
        a.cleanup()


def test_self_fencing_when_the_server_hangs(pair, fake_fc, smbd):
    """The SMB server stops answering (paused): A's renewal I/O hangs in
    the bridge, the fencer still kills A's VMM before the lease expires;
    once the server answers again, B starts the VM after the expiry."""
    a, b = pair
    s = Shared(a, b, smbd)
    st, v = s.create(a)
    assert st == 201, v
    g = s.lease()["generation"]
    assert wait_for(lambda: s.lease()["generation"] > g, timeout=30, interval=0.1)
    st, r = s.create(b, start=False)
    assert st == 201, r
    smbd.pause()
    try:
        killed = wait_for(lambda: vmm_killed(v["pid"]), timeout=60, interval=0.02)
        gone_at = now_ms()
        assert killed, "A's VMM was not fenced:\n" + a.log()[-3000:]
        r = wait_for(lambda: (lambda x: x if x["state"] == "error" else None)(
            vm(a, s.vm_id)), timeout=30)
        assert r and r["fenced"] is True and r["lease"]["state"] == "lost", r
    finally:
        smbd.resume()
    last = s.lease()
    assert last["agent_id"] == agent_id(a)
    assert gone_at < last["expires_at_ms"], (gone_at, last)
    st, r = wait_for(lambda: (lambda x: x if x[0] == 200 else None)(
        b.request("POST", "/v1/vms/%s/start" % s.vm_id)), timeout=60, interval=0.2)
    assert st == 200 and r["state"] == "running", r
    assert now_ms() >= last["expires_at_ms"]
    assert s.lease()["agent_id"] == agent_id(b)
    assert vm(a, s.vm_id)["state"] == "error"
