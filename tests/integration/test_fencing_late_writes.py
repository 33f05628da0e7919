"""No late writes from a fenced host (docs/leases.md, "Late writes").

Two hosts in network namespaces (fixtures_multihost.Net) reach one real
smbd, which audits every write with the client's address and the second
it ran (full_audit, smbd.py audit=True). Host A's guest writes a pattern
to its disk; A is cut off from the share; its agent fences the VM; B takes
the lease after it expired and writes its own pattern over the same
region; A comes back. Nothing A's guest wrote may reach the share after
A's fence: the bridge's io_deadline= (given by the agent) fails the stuck
writes, never replays them, and the TCP user timeout keeps the kernel
from retransmitting them when the link returns.

The control runs the same story on bridges started by hand without
io_deadline=: there the stuck write DOES land after the heal and destroys
B's data, so the assertions above can fail."""

import json
import math
import os
import subprocess
import sys
import time

import pytest

from daemon import smbfs_pids, unmount, wait_for
from fixtures_agent import Agent, new_id
from fixtures_multihost import Net
from fixtures_vm import create, kill_vmms, put_image
from smbd import Smbd

LEASE_S = 8          # renew every 1 s; fence 6 s after the last renewal
IO_DEADLINE_S = 1    # what the agent derives from it: 2 × 1 s - 1 s
OFFSET, SIZE = 1 << 20, 64 << 10
PATTERN_A, PATTERN_B = "A-host-a-late?|", "B-host-b-owns.|"
# After the heal: the control's late write lands within a few seconds
# (the bridge retries every second at most; TCP retransmits with backoff
# of at most ~13 s after a partition this short); the fenced case is given
# the same time, and more, to show nothing comes.
SETTLE_S = 30
WRITES = ("pwrite", "pwrite_send")


def pattern_block(p):
    return (p.encode() * (SIZE // len(p) + 1))[:SIZE]


@pytest.fixture
def net():
    n = Net(max_hosts=2).start()
    try:
        n.add_host("a")
        n.add_host("b")
        yield n
    finally:
        for name, h in n.hosts.items():
            if h.partitioned:
                n.heal(name)
        n.cleanup()


@pytest.fixture
def asmbd(net):
    s = Smbd(audit=True, extra_interfaces=[net.service_ip]).start()
    yield s
    s.stop()


def a_writes(smbd, ip, path, since=None):
    """The audited writes of host ip to path, those in or after the second
    of `since` (wall clock) only when given."""
    return [r for r in smbd.audit_records()
            if r["ip"] == ip and r["path"] == path and r["op"] in WRITES
            and (since is None or r["at"] >= math.floor(since))]


def region(path):
    with open(path, "rb") as f:
        f.seek(OFFSET)
        return f.read(SIZE)


def write_through(path, pattern):
    fd = os.open(path, os.O_RDWR)
    try:
        assert os.pwrite(fd, pattern_block(pattern), OFFSET) == SIZE
        os.fsync(fd)
    finally:
        os.close(fd)


def read_lease(path):
    """The lease file's content, or None. A renewal through libsmbclient
    renames over the lease as an unlink and a rename: look a few times."""
    for _ in range(20):
        try:
            with open(path) as f:
                return json.load(f)
        except FileNotFoundError:
            time.sleep(0.01)
    return None


def vmm_killed(pid):
    """Gone, a zombie, or exiting (its last close may wait on the mount)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return True
    return rest[0] in ("Z", "X") or (int(rest[6]) & 0x4) != 0


# -- with agents: the real fencing path -------------------------------------

class NsAgent(Agent):
    """An agent (and so its bridges and VMMs) in a host's network namespace."""

    def __init__(self, ns, **kw):
        super().__init__(**kw)
        self.ns = ns

    def args(self):
        return ["nsenter", "--net=/run/netns/" + self.ns, "--"] + super().args()


def ns_agent(fake_fc, net, name):
    a = NsAgent(net.hosts[name].ns, extra_args=[
        "--firecracker-path", fake_fc.path, "--lease-seconds", str(LEASE_S),
        "--host-name", "host-" + name, "--vm-stop-timeout", "3"]).start()
    put_image(a, "vmlinux", 0, b"\x7fELF fake kernel for the fake firecracker")
    return a


def test_fenced_host_writes_nothing_after_its_fence(net, asmbd, fake_fc):
    made = []
    try:
        a = ns_agent(fake_fc, net, "a")
        made.append(a)
        b = ns_agent(fake_fc, net, "b")
        made.append(b)
        run_fencing_story(net, asmbd, fake_fc, a, b)
    finally:
        for h in net.hosts:
            if net.hosts[h].partitioned:
                net.heal(h)
        for x in made:
            kill_vmms(x)
            x.cleanup()


def run_fencing_story(net, smbd, fake_fc, a, b):
    a_ip, b_ip = net.hosts["a"].ip, net.hosts["b"].ip
    bid, vid, vm_id = new_id(), new_id(), new_id()
    body = dict(backend_id=bid, server=net.service_ip, share="guest",
                subdir="vms-" + bid[:8], mount_options="port=%d" % smbd.port)
    st, ma = a.mount(**body)
    assert st == 200, ma
    st, mb = b.mount(**body)
    assert st == 200, mb
    # The agent gave A's bridge the bound it derived from its lease.
    for p in smbfs_pids(ma["mount_point"]):
        with open("/proc/%d/cmdline" % p, "rb") as f:
            assert b"io_deadline=%d" % IO_DEADLINE_S in f.read()
    put_image(a, size=4 << 20)
    st, vol = a.request("POST", "/v1/storage/smb/volumes",
                        {"backend_id": bid, "volume_id": vid, "image": "rootfs.ext4"})
    assert st == 201, vol
    rel = os.path.relpath(vol["path"], ma["mount_point"])
    disk = os.path.join(smbd.shares["guest"], rel)
    lease_path = os.path.join(os.path.dirname(disk), ".smb-%s.lease" % vid)

    # The guest writes, then holds until A is cut off, then writes on: so
    # its writes go out on the dead link (one answered before the cut is
    # no late write), every time.
    fake_fc.write_pattern(vm_id, OFFSET, SIZE, PATTERN_A, threads=2, fsync_every=3,
                          pause=0.05, hold_after=6)
    st, v = create(a, bid, vid, id=vm_id)
    assert st == 201 and v["state"] == "running", v
    assert wait_for(lambda: len(a_writes(smbd, a_ip, disk)) >= 8, timeout=30), \
        "A's guest never wrote:\n" + a.log()[-2000:]
    g = read_lease(lease_path)["generation"]
    assert wait_for(lambda: (read_lease(lease_path) or {}).get("generation", g) > g,
                    timeout=30)

    net.partition("a")
    parted = time.time()
    fake_fc.write_go(vm_id)
    assert wait_for(lambda: vmm_killed(v["pid"]), timeout=60, interval=0.02), \
        "A's VMM was not fenced:\n" + a.log()[-3000:]
    fenced = time.time()
    last = read_lease(lease_path)  # A cannot change it any more
    assert fenced * 1000 < last["expires_at_ms"], (fenced, last)

    # B: its own VM on the volume, started once A's lease expired; its
    # guest does not write, the test writes B's pattern through B's mount.
    fake_fc.write_pattern(vm_id, 0, 0, None)
    st, r = create(b, bid, vid, id=vm_id, start=False)
    assert st == 201, r
    st, r = wait_for(lambda: (lambda x: x if x[0] == 200 else None)(
        b.request("POST", "/v1/vms/%s/start" % vm_id)), timeout=60, interval=0.2)
    assert st == 200 and r["state"] == "running", r
    assert time.time() * 1000 >= last["expires_at_ms"]
    write_through(os.path.join(mb["mount_point"], rel), PATTERN_B)
    assert region(disk) == pattern_block(PATTERN_B)
    assert a_writes(smbd, b_ip, disk), "B's write is not in the audit log"

    net.heal("a")
    healed = time.time()
    time.sleep(SETTLE_S)
    # (a) nothing of A's reached the share after A's fence
    late = a_writes(smbd, a_ip, disk, since=fenced)
    assert not late, ("A wrote after its fence", parted, fenced, healed, late[:3])
    # (b) B's data is intact
    assert region(disk) == pattern_block(PATTERN_B)
    st, r = a.request("GET", "/v1/vms/" + vm_id)
    assert st == 200 and r["fenced"] is True, r


# -- bridges by hand: the mechanism, and the control without it -------------

# A writer through A's mount: a few rounds now, then (after a line on
# stdin) three threads writing in a loop until it is killed, so writes
# reach A's bridge while A is cut off.
WRITER = r"""
import os, sys, threading, time
path, pattern, off, size = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
block = (pattern * (size // len(pattern) + 1))[:size]
fd = os.open(path, os.O_RDWR)
for _ in range(12):
    os.pwrite(fd, block, off)
sys.stdin.readline()
def loop():
    while True:
        try:
            os.pwrite(fd, block, off)
        except OSError:
            time.sleep(0.05)
for _ in range(3):
    threading.Thread(target=loop, daemon=True).start()
while True:
    time.sleep(1)
"""


def ns_mount(smbfs_bin, net, name, smbd, mp, extra=""):
    opts = "guest,port=%d,soft,timeout=90%s" % (smbd.port, extra)
    r = subprocess.run(["nsenter", "--net=/run/netns/" + net.hosts[name].ns, "--",
                        smbfs_bin, "//%s/guest" % net.service_ip, mp, "-o", opts],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr.decode(errors="replace")


@pytest.mark.parametrize("deadline", [0, IO_DEADLINE_S],
                         ids=["control-no-io-deadline", "io-deadline"])
def test_bridge_late_write(net, asmbd, smbfs_bin, tmp_path, deadline):
    a_ip = net.hosts["a"].ip
    mpa, mpb = str(tmp_path / "a"), str(tmp_path / "b")
    os.mkdir(mpa)
    os.mkdir(mpb)
    writer = None
    try:
        ns_mount(smbfs_bin, net, "a", asmbd, mpa,
                 ",io_deadline=%d" % deadline if deadline else "")
        ns_mount(smbfs_bin, net, "b", asmbd, mpb)
        name = "late-%s.raw" % new_id()[:8]
        disk = os.path.join(asmbd.shares["guest"], name)
        with open(os.path.join(mpb, name), "wb") as f:
            f.truncate(4 << 20)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, os.path.join(mpa, name),
                                   PATTERN_A, str(OFFSET), str(SIZE)],
                                  stdin=subprocess.PIPE)
        assert wait_for(lambda: len(a_writes(asmbd, a_ip, disk)) >= 12, timeout=30)
        net.partition("a")
        writer.stdin.write(b"go\n")
        writer.stdin.flush()
        time.sleep(1.0)   # A's writes are stuck in its bridge now
        writer.kill()     # "fenced": the writer dies, its requests do not
        killed = time.time()
        time.sleep(deadline + 2.0)
        write_through(os.path.join(mpb, name), PATTERN_B)
        b_done = time.time()
        assert region(disk) == pattern_block(PATTERN_B)
        net.heal("a")
        if deadline == 0:
            late = wait_for(lambda: a_writes(asmbd, a_ip, disk, since=b_done),
                            timeout=SETTLE_S, interval=0.2)
            assert late, "the control's late write never landed: the test cannot fail"
            assert region(disk) != pattern_block(PATTERN_B)  # B's data destroyed
        else:
            time.sleep(SETTLE_S)
            late = a_writes(asmbd, a_ip, disk, since=b_done)
            assert not late, (killed, b_done, late[:3])
            assert region(disk) == pattern_block(PATTERN_B)
    finally:
        for h in net.hosts:
            if net.hosts[h].partitioned:
                net.heal(h)
        if writer:
            writer.kill()
            writer.wait(timeout=120)
        unmount(mpa)
        unmount(mpb)
