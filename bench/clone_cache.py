#!/usr/bin/env python3
"""bench/clone_cache: VM disk creation on an SMB backend from a dense image
(default 1 GiB), with the backend's base cache against without it, on three
shares backed by loop-mounted ext4, xfs and btrfs and one on the host's own
file system ("host": the work dir's, ext4 here) (Samba serves SMB2
COPYCHUNK with copy_file_range(), a reflink on xfs/btrfs). For each:

  today     an agent run with --base-cache false: the image is copied through
            the client (read locally, written through nqrust-smbfs)
  first     the first create with the cache: hash, fill the cache entry
            through the client, then clone it on the server
  second    a second create: cloned from the cache on the server only
  splice    copy_file_range of the cache entry to a new file on the FUSE
            mount (nqrust-smbfs -> smbc_splice): the raw server-side copy
  floor     the same copy_file_range + fsync on the server's own file
            system, no SMB at all: the least a durable clone can take on
            that file system (a reflink on xfs/btrfs; on ext4 every byte is
            written to the disk). today/floor is the best ratio any clone
            that is on disk when the create returns can reach there.

and print seconds and ratios (today / second is the figure of issue 13:
targets >= 5x on ext4, >= 20x on xfs/btrfs). Needs root (FUSE, loop
devices) and xfsprogs, btrfs-progs. Loop devices are always detached.
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
MKFS = {"ext4": ["mkfs.ext4", "-q", "-F"], "xfs": ["mkfs.xfs", "-q", "-f"],
        "btrfs": ["mkfs.btrfs", "-q", "-f"]}


def run(*argv):
    return subprocess.run(list(argv), check=True, capture_output=True,
                          text=True).stdout.strip()


class LoopFs:
    """A file system of `kind` on a loop device, mounted at `mountpoint`."""

    def __init__(self, kind, backing, mountpoint, size):
        self.kind, self.backing, self.mountpoint = kind, backing, mountpoint
        self.dev = None
        self.mounted = False
        with open(backing, "wb") as f:
            f.truncate(size)

    def __enter__(self):
        try:
            self.dev = run("losetup", "--find", "--show", self.backing)
            run(*MKFS[self.kind], self.dev)
            run("mount", self.dev, self.mountpoint)
            self.mounted = True
            os.chmod(self.mountpoint, 0o777)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.mounted:
            subprocess.run(["umount", self.mountpoint], check=False)
            if subprocess.run(["mountpoint", "-q", self.mountpoint]).returncode == 0:
                subprocess.run(["umount", "-l", self.mountpoint], check=False)
            self.mounted = False
        if self.dev:
            subprocess.run(["losetup", "-d", self.dev], check=False)
            self.dev = None
        try:
            os.unlink(self.backing)
        except OSError:
            pass


class HostFs:
    """The share on the file system the work dir is on (no loop device):
    kind "host", e.g. the machine's own ext4."""

    def __init__(self, *args):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def dense_image(path, size):
    block = os.urandom(64 * MiB)
    with open(path, "wb") as f:
        for i in range(size // len(block)):
            # Every block differs a little: no file system dedupes it.
            f.write(i.to_bytes(8, "little") + block[8:])
    # On disk before anything is timed: its write-back must not slow the
    # first create measured ("today"), and it stays in the page cache.
    os.sync()
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)  # warm cache


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return time.monotonic() - t0, r


def create(agent, bid, image):
    from fixtures_agent import new_id

    vid = new_id()
    st, r = agent.request("POST", "/v1/storage/smb/volumes",
                          {"backend_id": bid, "volume_id": vid, "image": image},
                          timeout=900)
    assert st == 201, r
    return vid, r


def splice_copy(src, dst, size):
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        done = 0
        while done < size:
            n = os.copy_file_range(fi.fileno(), fo.fileno(), size - done, done, done)
            if n == 0:
                break
            done += n
        os.fsync(fo.fileno())
    return done


def bench_one(kind, size, work):
    from fixtures_agent import Agent, new_id
    from smbd import Smbd

    s = Smbd(base_dir=tempfile.mkdtemp(prefix="nqrust-bench-smbd-", dir=work))
    share = s.shares["guest"]
    row = {"fs": kind}
    fs = HostFs if kind == "host" else LoopFs
    with fs(kind, os.path.join(work, kind + ".loop"), share, size * 4 + 2 * GiB):
        agents = []
        try:
            s.start()
            cached = Agent().start()
            agents.append(cached)
            today = Agent(extra_args=["--base-cache", "false"]).start()
            agents.append(today)
            bid, sub = new_id(), "bench"
            mounts = {}
            for a in agents:
                st, m = a.mount(backend_id=bid, server=s.host, share="guest",
                                subdir=sub, mount_options="port=%d" % s.port)
                assert st == 200, m
                mounts[a] = m
            img = os.path.join(cached.image_dir, "dense.img")
            dense_image(img, size)
            os.link(img, os.path.join(today.image_dir, "dense.img"))
            row["today"], (v0, r0) = timed(lambda: create(today, bid, "dense.img"))
            assert r0["base_cache"] == "off" and r0["copy_method"] == "client_copy", r0
            row["first"], (v1, r1) = timed(lambda: create(cached, bid, "dense.img"))
            assert r1["base_cache"] == "filled", r1
            row["second"], (v2, r2) = timed(lambda: create(cached, bid, "dense.img"))
            assert r2["base_cache"] == "hit" and r2["copy_method"] == "server_copy", r2
            vdir = os.path.join(share, sub)
            for v in (v0, v1, v2):
                subprocess.run(["cmp", img, os.path.join(vdir, "smb-%s.raw" % v)],
                               check=True)
            cache = os.path.join(mounts[cached]["volume_dir"], ".nqrust-cache")
            raw = [n for n in os.listdir(cache) if n.endswith(".raw")][0]
            row["splice"], n = timed(lambda: splice_copy(
                os.path.join(cache, raw),
                os.path.join(mounts[cached]["volume_dir"], "splice.raw"), size))
            assert n == size
            os.unlink(os.path.join(vdir, "splice.raw"))  # room for the next copy
            local = os.path.join(vdir, ".nqrust-cache", raw)
            row["floor"], n = timed(lambda: splice_copy(
                local, os.path.join(vdir, "floor.raw"), size))
            assert n == size
        finally:
            for a in agents:
                a.cleanup()
            s.stop()
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--size", type=int, default=GiB)
    ap.add_argument("--fs", default="ext4,xfs,btrfs,host")
    ap.add_argument("--workdir", default="/var/tmp")
    args = ap.parse_args()
    os.environ["NQRUST_BUILD_DIR"] = os.path.abspath(args.build)
    work = tempfile.mkdtemp(prefix="nqrust-bench-cache-", dir=args.workdir)
    try:
        rows = [bench_one(k, args.size, work) for k in args.fs.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("VM disk from a %d MiB dense image on an SMB share (nqrust-smbfs), seconds"
          % (args.size // MiB))
    print("%-6s %8s %8s %8s %8s %8s %14s %14s %12s" % (
        "fs", "today", "first", "second", "splice", "floor", "today/second",
        "today/first", "today/floor"))
    for r in rows:
        print("%-6s %8.2f %8.2f %8.2f %8.2f %8.2f %13.1fx %13.2fx %11.1fx" % (
            r["fs"], r["today"], r["first"], r["second"], r["splice"], r["floor"],
            r["today"] / r["second"], r["today"] / r["first"],
            r["today"] / r["floor"]))


if __name__ == "__main__":
    main()
