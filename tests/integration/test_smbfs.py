"""nqrust-smbfs against a real smbd: mounts, I/O, sparseness, statfs and
the mount.cifs-style error contract. Needs root (FUSE is root-only here)."""

import errno
import os
import random
import re
import socket
import subprocess
import time

import pytest

from daemon import mountinfo, proc_running, smbfs_pids, wait_for
from fixtures_smbfs import guest_opts

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="FUSE mounts need root")


@pytest.fixture
def credfile(tmp_path, smbd):
    def make(password=None, user=None, domain=None):
        path = str(tmp_path / ("cred%d" % random.randrange(1 << 30)))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        body = "username=%s\npassword=%s\n" % (user or smbd.user,
                                               smbd.password if password is None else password)
        if domain:
            body += "domain=%s\n" % domain
        os.write(fd, body.encode())
        os.close(fd)
        return path
    return make


# -- mounting --------------------------------------------------------------

def test_guest_mount_shows_in_mountinfo_and_serves_files(mounter, smbd):
    mp = mounter.mount(smbd.unc("guest"),
                       guest_opts(smbd, "uid=1234,gid=4321,file_mode=0640,dir_mode=0750"))
    fstype, source, _ = mountinfo(mp)
    assert fstype == "fuse.nqrust-smbfs"
    assert source == "//127.0.0.1/guest"
    with open(os.path.join(mp, "hello.txt"), "w") as f:
        f.write("hello smb\n")
    with open(os.path.join(smbd.shares["guest"], "hello.txt")) as f:
        assert f.read() == "hello smb\n"
    st = os.stat(os.path.join(mp, "hello.txt"))
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    assert st.st_mode & 0o7777 == 0o640
    assert os.stat(mp).st_mode & 0o7777 == 0o750
    assert "hello.txt" in os.listdir(mp)
    os.unlink(os.path.join(mp, "hello.txt"))
    assert not os.path.exists(os.path.join(smbd.shares["guest"], "hello.txt"))


def test_password_mount_with_hostile_password(mounter, smbd, credfile):
    cred = credfile()
    r = mounter.run(smbd.unc("secure"), "credentials=%s,port=%d" % (cred, smbd.port))
    assert r.returncode == 0, r.stderr
    assert smbd.password.encode() not in r.stderr + r.stdout
    mp = r.mountpoint
    with open(os.path.join(mp, "secret-ok"), "wb") as f:
        f.write(b"x" * 1000)
    assert os.path.getsize(os.path.join(smbd.shares["secure"], "secret-ok")) == 1000
    # The password is in no process's argv or environment.
    pw = smbd.password.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        for name in ("cmdline", "environ"):
            try:
                with open("/proc/%s/%s" % (pid, name), "rb") as f:
                    assert pw not in f.read(), "password in /proc/%s/%s" % (pid, name)
            except OSError:
                pass
    os.unlink(os.path.join(mp, "secret-ok"))


def test_domain_in_credentials_file_is_accepted(mounter, smbd, credfile):
    mounter.mount(smbd.unc("secure"),
                  "credentials=%s,port=%d" % (credfile(domain="WORKGROUP"), smbd.port))


@pytest.mark.parametrize("vers", ["2.0", "2.1", "3", "3.0", "3.11", "default"])
def test_versions_mount(mounter, smbd, vers):
    mp = mounter.mount(smbd.unc("guest"), guest_opts(smbd, "vers=" + vers))
    name = "v-%s" % vers
    with open(os.path.join(mp, name), "w") as f:
        f.write(vers)
    with open(os.path.join(smbd.shares["guest"], name)) as f:
        assert f.read() == vers
    os.unlink(os.path.join(mp, name))


def test_ipv6_literal(mounter, smbd):
    mp = mounter.mount("//[::1]/guest", guest_opts(smbd))
    assert mountinfo(mp)[1] == "//[::1]/guest"
    assert os.path.isdir(mp)


def test_foreground_exits_zero_after_umount(smbfs_bin, smbd, tmp_path):
    mp = str(tmp_path / "fg")
    os.mkdir(mp)
    p = subprocess.Popen([smbfs_bin, smbd.unc("guest"), mp, "-o", guest_opts(smbd), "-f"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while mountinfo(mp) is None and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.05)
        assert mountinfo(mp) is not None
        os.listdir(mp)
        subprocess.run(["umount", "-c", mp], check=True)
        rc = p.wait(timeout=15)
        assert rc == 0, p.stderr.read().decode(errors="replace")[-3000:]
    finally:
        if p.poll() is None:
            subprocess.run(["umount", "-c", "-l", mp])
            p.kill()
            p.wait()


def test_daemon_exits_after_umount(mounter, smbd):
    mp = mounter.mount(smbd.unc("guest"), guest_opts(smbd))
    pids = smbfs_pids(mp)
    assert len(pids) == 1
    with open("/proc/%d/stat" % pids[0]) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert int(fields[3]) == pids[0], "daemon is not a session leader"
    subprocess.run(["umount", "-c", mp], check=True)
    assert wait_for(lambda: not proc_running(pids[0]), timeout=10, interval=0.05)


# -- I/O -------------------------------------------------------------------

def test_random_read_write_at_offsets(mounter, smbd):
    mp = mounter.mount(smbd.unc("guest"), guest_opts(smbd))
    path = os.path.join(mp, "rand.bin")
    size = 8 << 20
    model = bytearray(size)
    rng = random.Random(1234)
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        for _ in range(200):
            off = rng.randrange(size - 70000)
            n = rng.randrange(1, 70000)
            data = rng.randbytes(n)
            assert os.pwrite(fd, data, off) == n
            model[off:off + n] = data
        for _ in range(100):
            off = rng.randrange(size)
            n = rng.randrange(1, 1 << 20)
            assert os.pread(fd, n, off) == bytes(model[off:off + n])
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(os.path.join(smbd.shares["guest"], "rand.bin"), "rb") as f:
        assert f.read() == bytes(model)
    # A write-only open must work too (libsmbclient needs O_RDWR inside).
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, b"W", 5)
        assert os.fstat(fd).st_size == size
    finally:
        os.close(fd)
    os.unlink(path)


def test_write_past_eof_and_ftruncate_stay_sparse(mounter, smbd):
    mp = mounter.mount(smbd.unc("guest"), guest_opts(smbd))
    path = os.path.join(mp, "disk.raw")
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        assert os.pwrite(fd, b"tail", 100 << 20) == 4
        os.ftruncate(fd, 1 << 30)
        os.fsync(fd)
        assert os.fstat(fd).st_size == 1 << 30
        assert os.pread(fd, 8, (100 << 20) - 4) == b"\0\0\0\0tail"
        assert os.pread(fd, 4, 500 << 20) == b"\0" * 4
    finally:
        os.close(fd)
    backing = os.path.join(smbd.shares["guest"], "disk.raw")
    st = os.stat(backing)
    assert st.st_size == 1 << 30
    assert st.st_blocks * 512 < (8 << 20), "server-side file is not sparse"
    du = subprocess.run(["du", "-k", backing], capture_output=True, text=True, check=True)
    assert int(du.stdout.split()[0]) < 8192
    os.truncate(path, 4096)  # path-based truncate (shrink)
    assert os.stat(backing).st_size == 4096
    os.unlink(path)


def test_big_sequential_io(mounter, smbd):
    mp = mounter.mount(smbd.unc("guest"), guest_opts(smbd))
    path = os.path.join(mp, "seq.bin")
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(32):
            f.write(block)
        f.flush()
        os.fsync(f.fileno())
    with open(path, "rb") as f:
        for _ in range(32):
            assert f.read(1 << 20) == block
        assert f.read(1) == b""
    os.unlink(path)


def test_statfs_matches_backing_fs(mounter, smbd):
    mp = mounter.mount(smbd.unc("guest"), guest_opts(smbd))
    got = os.statvfs(mp)
    want = os.statvfs(smbd.shares["guest"])
    total = got.f_blocks * got.f_frsize
    avail = got.f_bavail * got.f_frsize
    assert total > 0 and avail > 0
    want_total = want.f_blocks * want.f_frsize
    want_avail = want.f_bavail * want.f_frsize
    assert abs(total - want_total) <= want_total * 0.02
    assert abs(avail - want_avail) <= max(want_total * 0.05, 1 << 30)


def test_mkdir_rename_unlink_rmdir(mounter, smbd):
    mp = mounter.mount(smbd.unc("guest"), guest_opts(smbd))
    back = smbd.shares["guest"]
    os.mkdir(os.path.join(mp, "d1"))
    assert os.path.isdir(os.path.join(back, "d1"))
    for name, body in (("a", b"A"), ("b", b"BB")):
        with open(os.path.join(mp, name), "wb") as f:
            f.write(body)
    os.rename(os.path.join(mp, "a"), os.path.join(mp, "d1", "a2"))
    assert open(os.path.join(back, "d1", "a2"), "rb").read() == b"A"
    # rename over an existing file replaces it
    os.rename(os.path.join(mp, "b"), os.path.join(mp, "d1", "a2"))
    assert open(os.path.join(back, "d1", "a2"), "rb").read() == b"BB"
    assert not os.path.exists(os.path.join(back, "b"))
    # odd names survive URL encoding
    odd = "odd %25 #name,é+;=&"
    with open(os.path.join(mp, "d1", odd), "w") as f:
        f.write("o")
    assert os.path.exists(os.path.join(back, "d1", odd))
    assert sorted(os.listdir(os.path.join(mp, "d1"))) == sorted(["a2", odd])
    with pytest.raises(OSError) as e:
        os.rmdir(os.path.join(mp, "d1"))
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(os.path.join(mp, "d1", "a2"))
    os.unlink(os.path.join(mp, "d1", odd))
    os.rmdir(os.path.join(mp, "d1"))
    assert not os.path.exists(os.path.join(back, "d1"))
    with pytest.raises(FileNotFoundError):
        os.stat(os.path.join(mp, "d1"))
    os.utime(mp, None)  # utimens on the root works


def test_readonly_share_mounts_but_refuses_writes(mounter, smbd):
    with open(os.path.join(smbd.shares["readonly"], "ro.txt"), "w") as f:
        f.write("read me")
    mp = mounter.mount(smbd.unc("readonly"), guest_opts(smbd))
    with open(os.path.join(mp, "ro.txt")) as f:
        assert f.read() == "read me"
    with pytest.raises(OSError) as e:
        with open(os.path.join(mp, "new.txt"), "w") as f:
            f.write("x")
    assert e.value.errno in (errno.EACCES, errno.EROFS, errno.EPERM)
    assert not os.path.exists(os.path.join(smbd.shares["readonly"], "new.txt"))


def test_ro_option_makes_mount_read_only(mounter, smbd):
    mp = mounter.mount(smbd.unc("guest"), guest_opts(smbd, "ro"))
    assert "ro" in mountinfo(mp)[2].split(",")
    with pytest.raises(OSError) as e:
        open(os.path.join(mp, "nope"), "w").close()
    assert e.value.errno == errno.EROFS


def test_accepted_cifs_flags(mounter, smbd):
    mounter.mount(smbd.unc("guest"), guest_opts(
        smbd, "nobrl,soft,hard,nodev,nosuid,noexec,rw,noperm,cache=none,"
              "actimeo=1,timeout=10,fsname=x,domain=WORKGROUP"))


# -- errors ----------------------------------------------------------------

def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_mount_error(r, n, password=None):
    err = r.stderr.decode(errors="replace")
    assert r.returncode == 32, err
    lines = err.splitlines()
    assert 1 <= len(lines) <= 2, err
    assert re.match(r"^mount error\(%d\): " % n, lines[0]), err
    assert mountinfo(r.mountpoint) is None
    if password:
        assert password.encode() not in r.stderr
    assert not smbfs_pids(r.mountpoint)


def test_wrong_password_is_13(mounter, smbd, credfile):
    bad = "wrong" + smbd.password
    r = mounter.run(smbd.unc("secure"), "credentials=%s,port=%d" % (credfile(bad), smbd.port))
    assert_mount_error(r, 13, bad)
    assert_mount_error(r, 13, smbd.password)


def test_guest_on_user_share_is_13(mounter, smbd):
    assert_mount_error(mounter.run(smbd.unc("secure"), guest_opts(smbd)), 13)


def test_wrong_share_is_2(mounter, smbd):
    assert_mount_error(mounter.run(smbd.unc("nosuchshare"), guest_opts(smbd)), 2)


def test_closed_port_is_111(mounter, smbd):
    r = mounter.run(smbd.unc("guest"), "guest,port=%d" % closed_port())
    assert_mount_error(r, 111)


def test_silent_server_times_out_110(mounter, silent_server):
    r = mounter.run("//127.0.0.1/guest", "guest,port=%d,timeout=2" % silent_server)
    assert_mount_error(r, 110)
    assert r.elapsed < 15


def test_missing_credentials_file_is_126(mounter, smbd, tmp_path):
    r = mounter.run(smbd.unc("secure"),
                    "credentials=%s,port=%d" % (tmp_path / "missing.cred", smbd.port))
    assert_mount_error(r, 126)
    assert b"credentials" in r.stderr


def test_unreadable_credentials_file_is_126(mounter, smbd, tmp_path):
    # A directory cannot be read as a file (root ignores mode bits).
    r = mounter.run(smbd.unc("secure"), "credentials=%s,port=%d" % (tmp_path, smbd.port))
    assert_mount_error(r, 126)


def test_impossible_version_pin_is_95(mounter, smbd_old):
    r = mounter.run(smbd_old.unc("guest"), "guest,port=%d,vers=3.11" % smbd_old.port)
    assert_mount_error(r, 95)
    mounter.mount(smbd_old.unc("guest"), "guest,port=%d,vers=2.1" % smbd_old.port)


@pytest.mark.parametrize("opts", [
    "guest,bogus",
    "guest,port=notanumber",
    "guest,port=70000",
    "guest,vers=1.0",
    "guest,cache=sometimes",
    "guest,password=p,a=s's",
    "port=445",                       # neither guest nor credentials=
    "guest,credentials=/x",           # both
    "guest,file_mode=999",
])
def test_bad_option_is_22(mounter, smbd, opts):
    r = mounter.run(smbd.unc("guest"), opts.replace("port=445", "port=%d" % smbd.port))
    assert_mount_error(r, 22)
    assert b"p,a=s's" not in r.stderr


@pytest.mark.parametrize("unc", ["127.0.0.1/guest", "//127.0.0.1", "//[::1/guest",
                                 "//bad host/guest", "//127.0.0.1/a,b"])
def test_malformed_source_is_22(mounter, smbd, unc):
    assert_mount_error(mounter.run(unc, guest_opts(smbd)), 22)


def test_concurrent_io_from_many_threads(mounter, smbd):
    """The FUSE loop is multi-threaded; libsmbclient calls are serialized
    and each read/write is seek+transfer on a shared handle offset, so
    interleaving threads must never mix up offsets."""
    import threading

    mp = mounter.mount(smbd.unc("guest"), guest_opts(smbd, "cache=none"))
    path = os.path.join(mp, "shared.bin")
    chunk = 256 << 10
    nthreads = 6
    fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o644)
    errors = []

    def worker(i):
        try:
            data = bytes([i + 1]) * chunk
            for rnd in range(8):
                off = (rnd * nthreads + i) * chunk
                assert os.pwrite(fd, data, off) == chunk
                assert os.pread(fd, chunk, off) == data
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        os.close(fd)
    assert not errors, errors
    with open(os.path.join(smbd.shares["guest"], "shared.bin"), "rb") as f:
        body = f.read()
    assert len(body) == 8 * nthreads * chunk
    for rnd in range(8):
        for i in range(nthreads):
            off = (rnd * nthreads + i) * chunk
            assert body[off:off + chunk] == bytes([i + 1]) * chunk
    os.unlink(path)


def test_check_authenticates_without_mounting(mounter, smbd, credfile):
    unc = "//%s/secure" % smbd.host
    opts = "credentials=%s,port=%d" % (credfile(), smbd.port)
    r = mounter.run(unc, opts, extra=["--check"])
    assert r.returncode == 0, r.stderr
    assert mountinfo(r.mountpoint) is None  # nothing was mounted
    bad = "credentials=%s,port=%d" % (credfile(password="nope"), smbd.port)
    r = mounter.run(unc, bad, extra=["--check"])
    assert r.returncode == 32
    assert r.stderr.startswith(b"mount error(13):")
    assert mountinfo(r.mountpoint) is None


def test_handle_closed_on_close_even_after_a_child_exec(mounter, smbd):
    """A child spawned while a file is open closes its copy at exec, which
    sends FLUSH for our file: I/O must keep working (lazy reopen), and once
    we close, the file can be renamed at once (the server saw the close)."""
    mp = mounter.mount("//%s/guest" % smbd.host, guest_opts(smbd))
    for i in range(5):
        tmp = os.path.join(mp, "flush-%d.tmp" % i)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        os.pwrite(fd, b"a" * 65536, 0)
        subprocess.run(["/bin/true"], check=True)  # exec closes its copy: FLUSH
        os.pwrite(fd, b"b" * 65536, 65536)
        assert os.pread(fd, 4, 0) == b"aaaa" and os.pread(fd, 4, 65536) == b"bbbb"
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, os.path.join(mp, "flush-%d.raw" % i))
        with open(os.path.join(smbd.shares["guest"], "flush-%d.raw" % i), "rb") as f:
            assert f.read() == b"a" * 65536 + b"b" * 65536
        os.unlink(os.path.join(mp, "flush-%d.raw" % i))
