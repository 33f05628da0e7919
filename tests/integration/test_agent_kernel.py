"""The kernel driver runs the real mount.cifs. This machine's kernel has no
cifs module, so it fails with mount error(19): with the kernel driver forced
that is cifs_unavailable; in auto mode the agent falls back to FUSE."""

import os
import shutil

import pytest

from fixtures_agent import new_id

pytestmark = pytest.mark.skipif(not shutil.which("mount.cifs"),
                                reason="cifs-utils not installed")


def cifs_in_kernel():
    with open("/proc/filesystems") as f:
        return any(line.split()[-1] in ("cifs", "smb3") for line in f)


@pytest.mark.skipif(cifs_in_kernel(), reason="this kernel has cifs")
def test_kernel_driver_reports_cifs_unavailable(agent_factory, smbd):
    a = agent_factory(driver="kernel")
    st, r = a.mount(backend_id=new_id(), server=smbd.host, share="guest",
                    mount_options="port=%d" % smbd.port)
    assert st == 422 and r["error"]["code"] == "cifs_unavailable", r
    assert "mount_driver=fuse" in r["error"]["message"]
    assert a.mounts() == []


@pytest.mark.skipif(cifs_in_kernel(), reason="this kernel has cifs")
def test_auto_falls_back_to_fuse_with_a_warning(agent_factory, smbd):
    a = agent_factory(driver="auto")
    bid = new_id()
    assert a.put_creds(bid, smbd.user, smbd.password)[0] == 204
    st, r = a.mount(backend_id=bid, server=smbd.host, share="secure",
                    username=smbd.user, mount_options="port=%d" % smbd.port)
    assert st == 200, r
    assert r["driver"] == "fuse"
    assert "level=warn" in a.log() and "falling back to the FUSE driver" in a.log()


def test_missing_mount_cifs_is_cifs_unavailable(agent_factory, smbd):
    a = agent_factory(driver="kernel", extra_args=["--mount-cifs-path", "/nonexistent/mount.cifs"])
    st, r = a.mount(backend_id=new_id(), server=smbd.host, share="guest",
                    mount_options="port=%d" % smbd.port)
    assert st == 422 and r["error"]["code"] == "cifs_unavailable", r
