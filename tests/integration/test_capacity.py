"""One capacity everywhere: a localfile backend and an SMB share whose
directory is on the same filesystem report the same total, used and
available bytes (available = what we may still write, statvfs f_bavail,
which is all an SMB server tells; used = total - available), in the
backend list and on every host row."""

import os
import subprocess

from fixtures_agent import build_path
from fixtures_manager import smb_config


def close(a, b, tol):
    return abs(a - b) <= tol


def test_localfile_and_smb_on_one_filesystem_agree(manager, agent, smbd):
    st, b = manager.create_backend("cap-smb", smb_config(smbd, "guest"))
    assert st == 201, b
    listed = manager.backends()
    lf, sm = listed["localfile-default"]["capacity"], listed["cap-smb"]["capacity"]
    sv = os.statvfs(smbd.shares["guest"])
    assert os.stat(smbd.shares["guest"]).st_dev == os.stat(agent.root).st_dev
    total, avail = sv.f_blocks * sv.f_frsize, sv.f_bavail * sv.f_frsize
    want = {"total_bytes": total, "used_bytes": total - avail, "available_bytes": avail}
    # Other tests write to this disk meanwhile: 256 MiB, and 1% of the disk.
    tol = max(256 << 20, want["total_bytes"] // 100)
    for cap in (lf, sm):
        assert set(want) <= set(cap), cap
        for k, v in want.items():
            assert close(cap[k], v, tol), (k, cap, want)
        assert cap["used_bytes"] + cap["available_bytes"] == cap["total_bytes"], cap
        assert cap["free_bytes"] == cap["available_bytes"], cap
    for h in listed["cap-smb"]["hosts"] + listed["localfile-default"]["hosts"]:
        assert set(want) <= set(h["capacity"]), h
    # The CLI shows the same three figures.
    out = subprocess.run([build_path("nqrust"), "backend", "list"], capture_output=True,
                         env={"NQRUST_URL": manager.url, "NQRUST_TOKEN": manager.token,
                              "HOME": "/nonexistent"}, timeout=60, check=True).stdout.decode()
    assert out.split()[5:8] == ["TOTAL", "USED", "AVAILABLE"], out
    print("localfile", lf, "smb", sm, "statvfs", want)
