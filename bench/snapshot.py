#!/usr/bin/env python3
"""bench/snapshot: a snapshot of a stopped VM's 1 GiB dense disk on SMB
shares backed by loop-mounted xfs, btrfs and ext4 (issue 13 §4: target
< 0.5 s on xfs/btrfs). Per file system, in one run: a real smbd serves the
loop mount, an agent mounts it (FUSE driver: this kernel has no cifs), a
1 GiB disk of random data is written through the mount, and then

  snapshot     POST /v1/storage/smb/volumes/<b>/<snap>/copy (the copy a
               snapshot of a stopped VM is: fs_sparse_copy on the share)
  client copy  read + write of the same file through the mount, 1 MiB
               at a time (what a copy without the server costs)

It prints wall time, the copy method the agent reports, the bytes smbd
wrote for it (/proc/<pid>/io wchar of the smbd processes: for the snapshot
these are the server's own writes into the copy, nothing crossed the wire;
for the client copy every byte came over SMB) and the ratio.
No assertions: the figures go in the closing note. Needs root (loop mounts).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

MiB, GiB = 1 << 20, 1 << 30
MKFS = {"xfs": ["mkfs.xfs", "-q", "-f"], "btrfs": ["mkfs.btrfs", "-q", "-f"],
        "ext4": ["mkfs.ext4", "-q", "-F"]}


def smbd_wchar(conf):
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if conf.encode() not in f.read():
                    continue
            with open("/proc/%s/io" % pid) as f:
                total += sum(int(l.split()[1]) for l in f if l.startswith("wchar:"))
        except OSError:
            pass
    return total


class LoopShare:
    """A sparse image file of size bytes, formatted as fs and loop-mounted
    on mountpoint (which then becomes the share's directory)."""

    def __init__(self, fs, mountpoint, size):
        self.dir = tempfile.mkdtemp(prefix="nqrust-bench-%s-" % fs)
        self.img = os.path.join(self.dir, "fs.img")
        self.mnt = mountpoint
        with open(self.img, "wb") as f:
            f.truncate(size)
        subprocess.run(MKFS[fs] + [self.img], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["mount", "-o", "loop", self.img, self.mnt], check=True)
        os.chmod(self.mnt, 0o777)

    def close(self):
        subprocess.run(["umount", "-l", self.mnt], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def timed(conf, fn):
    os.sync()  # the disk just written settles first (btrfs commits)
    before = smbd_wchar(conf)
    t0 = time.monotonic()
    out = fn()
    took = time.monotonic() - t0
    time.sleep(0.2)  # let smbd account the last packets
    return took, smbd_wchar(conf) - before, out


def client_copy(src, dst):
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        while True:
            b = fi.read(MiB)
            if not b:
                break
            fo.write(b)
        fo.flush()
        os.fsync(fo.fileno())


def bench_fs(fs, size):
    from fixtures_agent import Agent, new_id
    from smbd import Smbd

    s = Smbd()
    share = LoopShare(fs, s.shares["guest"], size * 3 + 512 * MiB)
    a = None
    try:
        s.start()
        a = Agent().start()
        bid = new_id()
        st, m = a.mount(backend_id=bid, server=s.host, share="guest",
                        mount_options="port=%d" % s.port)
        assert st == 200, m
        disk = new_id()
        path = os.path.join(m["volume_dir"], "smb-%s.raw" % disk)
        with open(path, "wb") as f:  # the stopped VM's dense disk
            for _ in range(size // MiB):
                f.write(os.urandom(MiB))
            os.fsync(f.fileno())
        snap = new_id()

        def snapshot():
            st, r = a.request("POST", "/v1/storage/smb/volumes/%s/%s/copy" % (bid, snap),
                              {"source_volume_id": disk}, timeout=600)
            assert st == 201, r
            return r["copy_method"]

        t_snap, w_snap, method = timed(s.conf, snapshot)
        t_cli, w_cli, _ = timed(s.conf, lambda: client_copy(
            path, os.path.join(m["volume_dir"], "client.raw")))
        subprocess.run(["cmp", path, os.path.join(share.mnt, "smb-%s.raw" % snap)],
                       check=True)
        return {"fs": fs, "snap": t_snap, "method": method, "w_snap": w_snap,
                "client": t_cli, "w_client": w_cli}
    finally:
        if a:
            a.cleanup()
        s.stop()
        share.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--size", type=int, default=GiB)
    ap.add_argument("--fs", nargs="*", default=["xfs", "btrfs", "ext4"])
    args = ap.parse_args()
    os.environ["NQRUST_BUILD_DIR"] = os.path.abspath(args.build)
    if os.geteuid() != 0:
        sys.exit("bench/snapshot.py needs root (loop mounts, FUSE)")
    rows = []
    for fs in args.fs:
        if not shutil.which(MKFS[fs][0]):
            print("skipping %s: %s is not installed" % (fs, MKFS[fs][0]))
            continue
        rows.append(bench_fs(fs, args.size))
    print("snapshot of a stopped VM's %d MiB dense disk on an SMB share (FUSE driver)"
          % (args.size // MiB))
    print("%-6s %10s %-12s %14s %12s %14s %9s" % ("fs", "snapshot s", "method",
                                                  "smbd wchar MiB", "client s",
                                                  "smbd wchar MiB", "x faster"))
    for r in rows:
        print("%-6s %10.3f %-12s %14.1f %12.3f %14.1f %9.1f" % (
            r["fs"], r["snap"], r["method"], r["w_snap"] / MiB, r["client"],
            r["w_client"] / MiB, r["client"] / r["snap"]))


if __name__ == "__main__":
    main()
