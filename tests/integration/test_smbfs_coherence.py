"""nqrust-smbfs coherence across hosts: two bridge mounts of one share
("host A" and "host B") plus direct edits of the share's backing dir (a
third writer). With several hosts on one share, the bridge's entry,
attribute and page caches must not serve answers that break another
host's work: a file deleted behind the mount can be created again at once,
a size change shows within the attribute timeout (actimeo=1, like kernel
cifs), and a file opened after another host wrote it reads what that host
wrote (VM disks move between hosts)."""

import errno
import os
import time

import pytest

from daemon import wait_for
from fixtures_smbfs import guest_opts

ACTIMEO = 1.0


@pytest.fixture
def hosts(mounter, smbd):
    """Two mounts of the guest share, and the backing dir."""
    a = mounter.mount(smbd.unc("guest"), guest_opts(smbd))
    b = mounter.mount(smbd.unc("guest"), guest_opts(smbd))
    sub = "coh-%d-%d" % (os.getpid(), time.monotonic_ns())
    os.mkdir(os.path.join(a, sub))
    return (os.path.join(a, sub), os.path.join(b, sub),
            os.path.join(smbd.shares["guest"], sub))


def write_new(path, data):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_recreate_after_delete_behind_the_mount(hosts):
    a, _, back = hosts
    f = os.path.join(a, "F")
    write_new(f, b"one")
    assert os.stat(f).st_size == 3  # the entry and attributes are cached now
    os.unlink(os.path.join(back, "F"))
    # Within the entry timeout: an O_CREAT open creates the file again.
    write_new(f, b"two!")
    assert read(os.path.join(back, "F")) == b"two!"
    assert read(f) == b"two!"


def test_open_without_create_of_file_deleted_behind_is_enoent(hosts):
    a, _, back = hosts
    f = os.path.join(a, "G")
    write_new(f, b"x")
    os.stat(f)
    os.unlink(os.path.join(back, "G"))
    with pytest.raises(OSError) as e:
        os.open(f, os.O_WRONLY)
    assert e.value.errno == errno.ENOENT
    assert not os.path.exists(os.path.join(back, "G"))  # nothing created


def test_recreate_after_delete_by_another_host(hosts):
    a, b, back = hosts
    write_new(os.path.join(a, "H"), b"from a")
    assert read(os.path.join(b, "H")) == b"from a"
    os.unlink(os.path.join(a, "H"))
    write_new(os.path.join(b, "H"), b"b again")
    assert read(os.path.join(back, "H")) == b"b again"


def test_exclusive_create_when_deleted_behind(hosts):
    a, _, back = hosts
    f = os.path.join(a, "X")
    write_new(f, b"1")
    os.stat(f)
    os.unlink(os.path.join(back, "X"))
    fd = os.open(f, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.close(fd)
    assert os.path.exists(os.path.join(back, "X"))


def test_size_change_behind_shows_within_actimeo(hosts):
    a, b, back = hosts
    f = os.path.join(a, "S")
    write_new(f, b"12345")
    assert os.stat(f).st_size == 5
    with open(os.path.join(back, "S"), "ab") as g:
        g.write(b"6789")
    t0 = time.monotonic()
    assert wait_for(lambda: os.stat(f).st_size == 9, timeout=10, interval=0.05)
    assert time.monotonic() - t0 <= ACTIMEO + 1.0  # generous for a loaded box
    # Through the other host too.
    assert os.stat(os.path.join(b, "S")).st_size == 9
    with open(os.path.join(b, "S"), "r+b") as g:
        g.truncate(2)
    assert wait_for(lambda: os.stat(f).st_size == 2, timeout=10, interval=0.05)


def test_open_after_another_host_wrote_reads_fresh_data(hosts):
    """A's page cache holds the old contents; B rewrites the file in place
    (same size, as a VM disk is); an open on A afterwards reads B's
    bytes."""
    a, b, back = hosts
    f = os.path.join(a, "disk")
    old, new = b"A" * 65536, b"B" * 65536
    write_new(f, old)
    assert read(f) == old  # cached on A
    time.sleep(0.01)  # a distinct mtime
    with open(os.path.join(b, "disk"), "r+b") as g:
        g.write(new)
        g.flush()
        os.fsync(g.fileno())
    assert read(os.path.join(back, "disk")) == new
    assert read(f) == new
    # And a change behind the mount, file kept open on A meanwhile.
    with open(f, "rb") as keep:
        with open(os.path.join(back, "disk"), "r+b") as g:
            g.write(b"C" * 100)
        assert read(f)[:100] == b"C" * 100
        keep.read(1)


def test_negative_entry_not_cached(hosts):
    a, _, back = hosts
    f = os.path.join(a, "N")
    assert not os.path.exists(f)
    with open(os.path.join(back, "N"), "wb") as g:
        g.write(b"now")
    assert os.path.exists(f) and read(f) == b"now"


def test_loose_cache_still_drops_pages_changed_by_another_host(mounter, smbd):
    """cache=loose keeps pages across opens, but the kernel drops them when
    a getattr after actimeo shows another host changed the mtime
    (FUSE_CAP_AUTO_INVAL_DATA), so that write is seen at the next open."""
    a = mounter.mount(smbd.unc("guest"), guest_opts(smbd, "cache=loose"))
    b = mounter.mount(smbd.unc("guest"), guest_opts(smbd))
    name = "loose-%d" % time.monotonic_ns()
    write_new(os.path.join(a, name), b"A" * 8192)
    assert read(os.path.join(a, name)) == b"A" * 8192
    time.sleep(0.01)
    with open(os.path.join(b, name), "r+b") as g:
        g.write(b"B" * 8192)
    time.sleep(ACTIMEO + 0.2)  # the attributes A holds are older than actimeo
    assert read(os.path.join(a, name)) == b"B" * 8192
