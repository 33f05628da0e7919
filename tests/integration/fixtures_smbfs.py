"""pytest fixtures for direct nqrust-smbfs mounts (no agent): `mounter`
mounts with the bridge and unmounts at teardown. Loaded by conftest.py."""

import os
import subprocess
import time

import pytest

from daemon import mountinfo, unmount

MOUNT_TIMEOUT = 60


def guest_opts(smbd, extra=""):
    return "guest,port=%d%s" % (smbd.port, ("," + extra) if extra else "")


class Mounter:
    def __init__(self, binary, base):
        self.binary = binary
        self.base = base
        self.mounted = []
        self.n = 0

    def mountpoint(self):
        self.n += 1
        p = os.path.join(self.base, "mnt%d" % self.n)
        os.mkdir(p)
        return p

    def run(self, unc, opts, mountpoint=None, extra=(), timeout=MOUNT_TIMEOUT):
        mp = mountpoint or self.mountpoint()
        argv = [self.binary, unc, mp, "-o", opts] + list(extra)
        self.mounted.append(mp)
        t0 = time.monotonic()
        r = subprocess.run(argv, capture_output=True, timeout=timeout)
        r.elapsed = time.monotonic() - t0
        r.mountpoint = mp
        return r

    def mount(self, unc, opts, **kw):
        r = self.run(unc, opts, **kw)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        assert r.stderr == b""
        info = mountinfo(r.mountpoint)
        assert info is not None, "exit 0 but nothing mounted"
        return r.mountpoint

    def cleanup(self):
        for mp in reversed(self.mounted):
            unmount(mp)


@pytest.fixture
def mounter(smbfs_bin, tmp_path):
    m = Mounter(smbfs_bin, str(tmp_path))
    yield m
    m.cleanup()
