"""nqrust-smbfs over a pool of SMB connections (conns=N) against a real
smbd through a real FUSE mount:

- several writers (threads and processes) to one file, on overlapping and
  disjoint ranges, and to several files at once: every byte checked with
  checksums through a fresh mount and directly in the share's backing dir;
- concurrent readers get exactly the file's bytes;
- an fsync after parallel writes reaches the server's disk (smbd's audit
  log), and a plain write does not;
- requests really run in parallel: with smbd stopped, N reads wait at
  once on N distinct TCP connections (the server side's receive queues);
- killing a worker process in the middle of a request fails that request
  with EIO, the others complete, a new worker takes its place and the
  mount keeps serving;
- conns= is validated.
"""

import errno
import hashlib
import multiprocessing
import os
import signal
import subprocess
import threading

import pytest

from daemon import smbfs_pids, wait_for
from fixtures_smbfs import guest_opts
from smbd import Smbd

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="FUSE mounts need root")

MIB = 1 << 20


@pytest.fixture(scope="module")
def asmbd():
    """One audited smbd for the module (fsyncs and writes in its log)."""
    s = Smbd(audit=True).start()
    yield s
    s.resume()
    s.stop()


def sha(data):
    return hashlib.sha256(data).hexdigest()


def block(tag, i, size):
    """size bytes unique to (tag, i), uniform per 16-byte cell."""
    cell = (b"%04d:%010d|" % (tag % 10000, i)).ljust(16, b".")
    return cell * (size // 16)


def workers_of(mp):
    """Pids of the bridge's worker processes (children of the bridge)."""
    bridge = smbfs_pids(mp)
    assert len(bridge) == 1, bridge
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read()
        except OSError:
            continue
        comm = st[st.index("(") + 1:st.rindex(")")]
        ppid = int(st[st.rindex(")") + 2:].split()[1])
        if ppid == bridge[0] and comm == "smbfs-worker":
            out.append(int(pid))
    return sorted(out)


def server_sockets_waiting(port):
    """Established server-side connections on port whose receive queue
    holds bytes smbd has not read (a request waiting for it)."""
    n = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local_port = int(f[1].rsplit(":", 1)[1], 16)
            rx = int(f[4].split(":")[1], 16)
            if local_port == port and f[3] == "01" and rx > 0:
                n += 1
    return n


def _tcp_entries():
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            out.append({"local": int(f[1].rsplit(":", 1)[1], 16),
                        "remote": int(f[2].rsplit(":", 1)[1], 16),
                        "state": f[3], "rx": int(f[4].split(":")[1], 16),
                        "inode": int(f[9])})
    return out


def busy_workers(mp, port):
    """Workers whose connection carries a request smbd has not read yet."""
    entries = _tcp_entries()
    waiting = {e["remote"] for e in entries
               if e["local"] == port and e["state"] == "01" and e["rx"] > 0}
    by_inode = {e["inode"]: e for e in entries if e["remote"] == port}
    out = []
    for pid in workers_of(mp):
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                e = by_inode.get(int(link[8:-1]))
                if e and e["local"] in waiting:
                    out.append(pid)
    return sorted(set(out))


def _proc_writer(path, tag, off, size, rounds):
    fd = os.open(path, os.O_WRONLY)
    try:
        for r in range(rounds):
            os.pwrite(fd, block(tag, r, size), off)
    finally:
        os.close(fd)


def test_concurrent_writers_overlapping_and_disjoint(asmbd, mounter):
    s = asmbd
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "conns=4"))
    assert len(workers_of(mp)) == 4
    path = os.path.join(mp, "shared")
    with open(path, "wb") as f:
        f.truncate(8 * MIB)
    expect = bytearray(8 * MIB)
    # Disjoint: four processes, each its own 1 MiB region, 3 rounds.
    procs = [multiprocessing.Process(target=_proc_writer,
                                     args=(path, t, t * MIB, MIB, 3))
             for t in range(4)]
    # Overlapping: four threads rewrite the same 256 KiB blocks of the
    # second half; each write is one uniform block, so any mixture of two
    # writes inside a block is a torn write.
    errors = []

    def overlap(t):
        try:
            fd = os.open(path, os.O_RDWR)
            try:
                for r in range(8):
                    os.pwrite(fd, block(100 + t, r, 256 << 10),
                              4 * MIB + (r % 4) * (256 << 10))
            finally:
                os.close(fd)
        except OSError as e:
            errors.append(e)

    threads = [threading.Thread(target=overlap, args=(t,)) for t in range(4)]
    for p in procs:
        p.start()
    for t in threads:
        t.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    for t in threads:
        t.join(60)
    assert not errors
    for t in range(4):
        expect[t * MIB:(t + 1) * MIB] = block(t, 2, MIB)
    with open(os.path.join(s.shares["guest"], "shared"), "rb") as f:
        backing = f.read()
    assert backing[:4 * MIB] == bytes(expect[:4 * MIB])
    for b in range(4):
        got = backing[4 * MIB + b * (256 << 10):4 * MIB + (b + 1) * (256 << 10)]
        assert got in [block(100 + t, r, 256 << 10) for t in range(4)
                       for r in range(b, 8, 4)], "torn block %d" % b
    assert backing[5 * MIB:] == bytes(3 * MIB)
    # Through a fresh mount: the same bytes.
    mp2 = mounter.mount(s.unc("guest"), guest_opts(s, "conns=2,cache=none"))
    with open(os.path.join(mp2, "shared"), "rb") as f:
        assert sha(f.read()) == sha(backing)


def test_parallel_writes_to_many_files_and_readers(asmbd, mounter):
    s = asmbd
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "conns=4,cache=none"))
    want = {}
    errors = []

    def writer(t):
        try:
            data = b"".join(block(200 + t, i, 64 << 10) for i in range(32))
            with open(os.path.join(mp, "many%d" % t), "wb") as f:
                for i in range(0, len(data), 128 << 10):
                    f.write(data[i:i + (128 << 10)])
            want["many%d" % t] = sha(data)
        except OSError as e:
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(6)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert not errors and len(want) == 6
    for name, digest in want.items():
        with open(os.path.join(s.shares["guest"], name), "rb") as f:
            assert sha(f.read()) == digest, name
    # Readers: random 64 KiB chunks of the files, all at once, uncached.
    src = {n: open(os.path.join(s.shares["guest"], n), "rb").read() for n in want}
    bad = []

    def reader(t):
        names = sorted(src)
        for k in range(24):
            n = names[(t + k) % len(names)]
            off = ((t * 7 + k * 5) % 32) * (64 << 10)
            fd = os.open(os.path.join(mp, n), os.O_RDONLY)
            try:
                if os.pread(fd, 64 << 10, off) != src[n][off:off + (64 << 10)]:
                    bad.append((n, off))
            finally:
                os.close(fd)

    threads = [threading.Thread(target=reader, args=(t,)) for t in range(6)]
    [t.start() for t in threads]
    [t.join(60) for t in threads]
    assert not bad


def test_fsync_after_parallel_writes_is_flushed(asmbd, mounter):
    s = asmbd
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "conns=4"))
    path = os.path.join(mp, "fs")
    backing = os.path.join(s.shares["guest"], "fs")
    fds = [os.open(path, os.O_RDWR | os.O_CREAT, 0o644) for _ in range(4)]
    try:
        def w(t):
            for r in range(4):
                os.pwrite(fds[t], block(300 + t, r, 64 << 10), (t * 4 + r) * (64 << 10))

        threads = [threading.Thread(target=w, args=(t,)) for t in range(4)]
        [t.start() for t in threads]
        [t.join(60) for t in threads]
        assert s.count_fsyncs(backing) == 0, "a plain write must not be a flush"
        os.fsync(fds[0])
        n = s.count_fsyncs(backing)
        # One flush per connection that wrote (4 workers and the bridge's
        # own), through any descriptor.
        assert 1 <= n <= 5
        os.fsync(fds[1])
        assert s.count_fsyncs(backing) == n + 1, "nothing written: one flush"
    finally:
        [os.close(fd) for fd in fds]
    with open(backing, "rb") as f:
        data = f.read()
    for t in range(4):
        for r in range(4):
            off = (t * 4 + r) * (64 << 10)
            assert data[off:off + (64 << 10)] == block(300 + t, r, 64 << 10)


def _start_readers(fds, size):
    """A thread per open descriptor (name -> fd) reading size bytes at 0:
    only the reads reach the server (opens went through the bridge's own
    connection before)."""
    results = {}

    def read(n):
        try:
            results[n] = os.pread(fds[n], size, 0)
        except OSError as e:
            results[n] = e

    threads = [threading.Thread(target=read, args=(n,)) for n in sorted(fds)]
    [t.start() for t in threads]
    return threads, results


def _open_all(mp, names):
    return {n: os.open(os.path.join(mp, n), os.O_RDONLY) for n in names}


def _make_files(s, prefix, n, size):
    data = {}
    for i in range(n):
        name = "%s%d" % (prefix, i)
        data[name] = block(400 + i, 0, size)
        with open(os.path.join(s.shares["guest"], name), "wb") as f:
            f.write(data[name])
    return data


def test_requests_run_in_parallel_on_distinct_connections(asmbd, mounter):
    s = asmbd
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "conns=4,cache=none"))
    data = _make_files(s, "par", 4, 256 << 10)
    fds = _open_all(mp, data)
    try:
        threads, results = _start_readers(fds, 256 << 10)
        [t.join(30) for t in threads]  # every worker connected once
        assert results == data
        s.pause()
        try:
            threads, results = _start_readers(fds, 256 << 10)
            # Four reads wait at the same time, each on its own connection.
            assert wait_for(lambda: server_sockets_waiting(s.port) >= 4, 20), \
                server_sockets_waiting(s.port)
        finally:
            s.resume()
        [t.join(30) for t in threads]
        assert results == data
    finally:
        [os.close(fd) for fd in fds.values()]


def test_killed_worker_fails_its_request_and_mount_keeps_serving(asmbd, mounter):
    s = asmbd
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "conns=2,cache=none"))
    # Three reads at once: one on the bridge's own connection (it takes a
    # request when it has none), one on each worker.
    data = _make_files(s, "kill", 3, 128 << 10)
    fds = _open_all(mp, data)
    threads, results = _start_readers(fds, 128 << 10)
    [t.join(30) for t in threads]
    assert results == data
    before = workers_of(mp)
    assert len(before) == 2
    s.pause()
    try:
        threads, results = _start_readers(fds, 128 << 10)
        busy = wait_for(lambda: busy_workers(mp, s.port), 20)
        assert busy
        victim = busy[0]
        os.kill(victim, signal.SIGKILL)
        # The request it held fails at once, smbd still stopped.
        assert wait_for(lambda: any(isinstance(v, OSError) for v in results.values()), 20)
    finally:
        s.resume()
    [t.join(30) for t in threads]
    failed = [n for n, v in results.items() if isinstance(v, OSError)]
    assert len(failed) == 1, results
    assert results[failed[0]].errno == errno.EIO
    for n in data:
        if n not in failed:
            assert results[n] == data[n]
    # Replaced, and serving: reads and a flushed write.
    after = wait_for(lambda: len(workers_of(mp)) == 2 and workers_of(mp), 20)
    assert after and victim not in after and len(set(after) & set(before)) == 1
    threads, results = _start_readers(fds, 128 << 10)
    [t.join(30) for t in threads]
    [os.close(fd) for fd in fds.values()]
    assert results == data
    with open(os.path.join(mp, "after"), "wb") as f:
        f.write(b"x" * 65536)
        os.fsync(f.fileno())
    with open(os.path.join(s.shares["guest"], "after"), "rb") as f:
        assert f.read() == b"x" * 65536


@pytest.mark.parametrize("value", ["0", "17", "x"])
def test_conns_is_validated(asmbd, mounter, value):
    r = mounter.run(asmbd.unc("guest"), guest_opts(asmbd, "conns=" + value))
    assert r.returncode == 32
    assert b"conns= must be 1..16" in r.stderr


def test_one_connection_still_works(asmbd, mounter):
    """conns=1: no workers, everything on the bridge's own connection."""
    s = asmbd
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "conns=1"))
    assert workers_of(mp) == []
    with open(os.path.join(mp, "one"), "wb") as f:
        f.write(b"1" * 4096)
    with open(os.path.join(s.shares["guest"], "one"), "rb") as f:
        assert f.read() == b"1" * 4096


def test_unmount_stops_the_workers(asmbd, mounter):
    s = asmbd
    mp = mounter.mount(s.unc("guest"), guest_opts(s, "conns=3"))
    ws = workers_of(mp)
    assert len(ws) == 3
    subprocess.run(["umount", mp], check=True)
    assert wait_for(lambda: not any(os.path.exists("/proc/%d" % p) for p in ws), 10)
