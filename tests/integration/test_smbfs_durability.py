"""nqrust-smbfs durability and outage ride-through against a real smbd.

- every fsync, fdatasync and O_SYNC write on the mount is a server-side
  fsync, counted from smbd's own log (full_audit VFS module);
- a writer on an open file rides through smbd restarts with zero errors and
  every byte where it was written;
- a soft mount with timeout=5 fails a request with EIO about 5 s into an
  outage, and serves again once the server is back;
- an exerciser of random writes, reads and truncates, checked against a
  model, stays clean, also across a restart in the middle.
"""

import errno
import os
import random
import threading
import time

import pytest

from daemon import wait_for
from fixtures_smbfs import guest_opts
from smbd import Smbd

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="FUSE mounts need root")


@pytest.fixture
def audit_smbd():
    s = Smbd(audit=True).start()
    yield s
    s.stop()


@pytest.fixture
def server(mounter):
    """A private smbd for tests that stop and restart it. Its mounts are
    unmounted while it is still up: with the server gone, the unmount's
    own requests would wait out the mount's grace."""
    s = Smbd().start()
    yield s
    s.up() if s.proc is None else s.resume()
    mounter.cleanup()
    s.stop()


def test_fsync_fdatasync_and_osync_reach_the_servers_disk(audit_smbd, mounter):
    s = audit_smbd
    mp = mounter.mount(s.unc("guest"), guest_opts(s))
    backing = os.path.join(s.shares["guest"], "f")
    fd = os.open(os.path.join(mp, "f"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, b"a" * 65536, 0)
        before = s.count_fsyncs(backing)
        assert before == 0, "a plain write must not be a flush"
        for i in range(10):
            os.pwrite(fd, bytes([i]) * 65536, i * 65536)
            os.fsync(fd)
            assert s.count_fsyncs(backing) == i + 1, "fsync %d did not flush" % i
        os.pwrite(fd, b"z" * 4096, 0)
        os.fdatasync(fd)
        assert s.count_fsyncs(backing) == 11
    finally:
        os.close(fd)
    sync_backing = os.path.join(s.shares["guest"], "g")
    fd = os.open(os.path.join(mp, "g"), os.O_RDWR | os.O_CREAT | os.O_SYNC, 0o644)
    try:
        os.pwrite(fd, b"y" * 4096, 0)
        assert s.count_fsyncs(sync_backing) >= 1, "O_SYNC write not durable"
    finally:
        os.close(fd)
    with open(backing, "rb") as f:
        data = f.read()
    assert data[:4096] == b"z" * 4096
    assert data[9 * 65536:] == bytes([9]) * 65536


def test_fsync_on_a_read_only_descriptor_flushes_the_file(audit_smbd, mounter):
    s = audit_smbd
    mp = mounter.mount(s.unc("guest"), guest_opts(s))
    path = os.path.join(mp, "ro")
    with open(path, "wb") as f:
        f.write(b"data")
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    assert s.count_fsyncs(os.path.join(s.shares["guest"], "ro")) == 1


def _pattern(i):
    return (b"%08d" % i) * 512  # 4 KiB, unique per block


def test_writer_rides_through_smbd_restarts(mounter, server):
    s = server
    mp = mounter.mount(s.unc("guest"), guest_opts(s))
    fd = os.open(os.path.join(mp, "disk"), os.O_RDWR | os.O_CREAT, 0o644)
    errors, done = [], []
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set() and i < 2000:
            try:
                os.pwrite(fd, _pattern(i), i * 4096)
                if os.pread(fd, 4096, i * 4096) != _pattern(i):
                    errors.append("block %d read back wrong" % i)
                if i % 10 == 9:
                    os.fsync(fd)
            except OSError as e:
                errors.append("block %d: %s" % (i, e))
            done.append(i)
            i += 1
            time.sleep(0.05)

    def blocks_written(k):
        """Wait until the writer has done k more blocks (however slowly)."""
        goal = len(done) + k
        assert wait_for(lambda: len(done) >= goal, timeout=120, interval=0.05), \
            (len(done), goal, errors)

    t = threading.Thread(target=writer)
    t.start()
    blocks_written(10)
    s.restart(down_s=0)     # an immediate restart
    blocks_written(10)
    s.restart(down_s=3.0)   # a few seconds away
    blocks_written(10)
    stop.set()
    t.join(timeout=120)
    assert not t.is_alive(), "writer hung"
    os.fsync(fd)
    os.close(fd)
    assert errors == []
    n = len(done)
    assert n > 20
    with open(os.path.join(s.shares["guest"], "disk"), "rb") as f:
        data = f.read()
    assert len(data) == n * 4096
    for i in range(n):
        assert data[i * 4096:(i + 1) * 4096] == _pattern(i), "block %d" % i


def assert_eio_after(op, timeout_s):
    """op() fails with EIO about timeout_s seconds in (the soft grace)."""
    t0 = time.monotonic()
    with pytest.raises(OSError) as ei:
        op()
    took = time.monotonic() - t0
    assert ei.value.errno == errno.EIO
    assert timeout_s - 1 <= took <= 15.0, "EIO after %.1f s, want about %d" % (took, timeout_s)


def test_soft_timeout_gives_eio_then_recovers(mounter, server):
    s = server
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "soft,timeout=5"))
    path = os.path.join(mp, "f")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"before", 0)
    s.down()

    def write_and_sync():
        os.pwrite(fd, b"during", 0)
        os.fsync(fd)
    assert_eio_after(write_and_sync, 5)
    s.up()
    os.pwrite(fd, b"after!", 0)
    os.fsync(fd)
    os.close(fd)
    with open(os.path.join(s.shares["guest"], "f"), "rb") as f:
        assert f.read() == b"after!"


def test_soft_timeout_with_a_hung_server_gives_eio(mounter, server):
    s = server
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "soft,timeout=4"))
    fd = os.open(os.path.join(mp, "f"), os.O_RDWR | os.O_CREAT, 0o644)
    s.pause()
    assert_eio_after(lambda: os.pwrite(fd, b"during", 0), 4)
    s.resume()
    os.pwrite(fd, b"after", 0)
    os.close(fd)


def test_killed_caller_is_released_at_once(mounter, server):
    """A process killed while its write waits out an outage (a fenced VMM,
    an agent shutting down) is gone within a backoff step, not after the
    mount's grace: the kernel interrupts the request and the bridge gives
    it up. Without that, the kernel holds the dying process in
    uninterruptible wait until the bridge answers."""
    import signal
    import subprocess
    import sys
    s = server
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "soft,timeout=60"))
    path = os.path.join(mp, "f")
    with open(path, "wb") as f:
        f.write(b"before")
    s.down()
    try:
        child = subprocess.Popen([sys.executable, "-c",
                                  "import os,sys; fd=os.open(sys.argv[1], os.O_RDWR);"
                                  " os.pwrite(fd, b'during', 0); os.fsync(fd)", path])
        # Blocked in the bridge, retrying (the grace is 60 s).
        assert wait_for(lambda: open("/proc/%d/wchan" % child.pid).read()
                 == "request_wait_answer", timeout=15)
        time.sleep(1.0)
        assert child.poll() is None
        t0 = time.monotonic()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        took = time.monotonic() - t0
        assert took < 5.0, "the killed writer took %.1f s to go (grace 60 s)" % took
    finally:
        s.up()
    with open(path, "rb") as f:  # the mount serves again
        assert f.read(6) in (b"before", b"during")


class Model:
    """What the file must hold: a bytearray mirror of every operation."""

    def __init__(self):
        self.data = bytearray()

    def write(self, off, buf):
        if off > len(self.data):
            self.data.extend(b"\0" * (off - len(self.data)))
        self.data[off:off + len(buf)] = buf

    def truncate(self, n):
        if n < len(self.data):
            del self.data[n:]
        else:
            self.data.extend(b"\0" * (n - len(self.data)))


def exercise(fd, model, rng, ops, maxlen):
    """fsx-style: random writes, reads, truncates and fsyncs, every read
    and a final whole-file read checked against the model."""
    for n in range(ops):
        op = rng.random()
        if op < 0.45:
            off = rng.randrange(maxlen)
            buf = bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 9000)))
            assert os.pwrite(fd, buf, off) == len(buf)
            model.write(off, buf)
        elif op < 0.8:
            off = rng.randrange(maxlen)
            ln = rng.randrange(1, 20000)
            got = os.pread(fd, ln, off)
            assert got == bytes(model.data[off:off + ln]), "op %d read @%d+%d" % (n, off, ln)
        elif op < 0.92:
            size = rng.randrange(maxlen)
            os.ftruncate(fd, size)
            model.truncate(size)
        else:
            os.fsync(fd)
        assert os.fstat(fd).st_size == len(model.data), "op %d size" % n


@pytest.mark.parametrize("cache", ["strict", "none"])
def test_random_io_exerciser_stays_clean(mounter, server, cache):
    s = server
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "cache=%s" % cache))
    fd = os.open(os.path.join(mp, "fsx"), os.O_RDWR | os.O_CREAT, 0o644)
    model, rng = Model(), random.Random(1234)
    exercise(fd, model, rng, 600, 256 * 1024)
    s.restart(down_s=1.0)
    exercise(fd, model, rng, 300, 256 * 1024)
    os.fsync(fd)
    os.close(fd)
    with open(os.path.join(s.shares["guest"], "fsx"), "rb") as f:
        assert f.read() == bytes(model.data)


@pytest.mark.parametrize("replay", [True, False])
def test_unflushed_writes_are_replayed_after_a_reconnect(mounter, server, replay):
    """The server loses what it had not flushed while it is away (a power
    cut, simulated by zeroing the bytes in the backing file): the bridge
    writes them again when it reconnects, so a later fsync covers them.
    replay_mib=0 turns the journal off and the loss shows."""
    s = server
    opts = "" if replay else "replay_mib=0"
    mp = mounter.mount(s.unc("guest"), guest_opts(s, opts))
    fd = os.open(os.path.join(mp, "disk"), os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"A" * 4096, 0)
    os.fsync(fd)
    os.pwrite(fd, b"B" * 4096, 4096)       # acknowledged, not flushed
    s.down()
    backing = os.path.join(s.shares["guest"], "disk")
    with open(backing, "r+b") as f:        # the server's cache is gone
        f.seek(4096)
        f.write(b"\0" * 4096)
    s.up()
    os.pwrite(fd, b"C" * 4096, 8192)
    os.fsync(fd)
    os.close(fd)
    with open(backing, "rb") as f:
        data = f.read()
    assert data[:4096] == b"A" * 4096 and data[8192:] == b"C" * 4096
    if replay:
        assert data[4096:8192] == b"B" * 4096
    else:
        assert data[4096:8192] == b"\0" * 4096


def test_full_replay_journal_is_flushed(audit_smbd, mounter):
    """With a 1 MiB journal, 3 MiB written without fsync are flushed by the
    bridge itself as the journal fills."""
    s = audit_smbd
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "replay_mib=1"))
    with open(os.path.join(mp, "big"), "wb") as f:
        for i in range(12):
            f.write(bytes([i]) * 262144)
    assert s.count_fsyncs(os.path.join(s.shares["guest"], "big")) >= 2


def test_agent_clone_is_flushed_before_its_rename(audit_smbd, agent):
    """The agent's clone: the temp file is fsynced on the server (from
    smbd's audit log) before the rename that names the volume ready."""
    from fixtures_agent import new_id
    s = audit_smbd
    bid, vid = new_id(), new_id()
    st, r = agent.mount(backend_id=bid, server=s.host, share="guest",
                        mount_options="port=%d" % s.port)
    assert st == 200, r
    with open(os.path.join(agent.image_dir, "base.raw"), "wb") as f:
        f.truncate(64 << 20)
        f.seek(1 << 20)
        f.write(os.urandom(4 << 20))
    st, r = agent.request("POST", "/v1/storage/smb/volumes",
                          {"backend_id": bid, "volume_id": vid, "image": "base.raw"})
    assert st == 201, r
    tmp = os.path.join(s.shares["guest"], ".smb-%s.raw.tmp" % vid)
    log = s.audit_lines()
    renames = [i for i, (op, p) in enumerate(log)
               if op == "renameat" and p.startswith(tmp)]
    flushes = [i for i, (op, p) in enumerate(log)
               if op in ("fsync", "fsync_send") and p == tmp]
    assert renames, log[-20:]
    assert flushes and flushes[-1] < renames[0], log[-20:]
    st, _ = agent.request("DELETE", "/v1/storage/smb/volumes/%s/%s" % (bid, vid))
    assert st == 204
    agent.request("DELETE", "/v1/storage/smb/mounts/" + bid)
