#!/usr/bin/env python3
"""bench/clone: clone a 1 GiB base image holding 64 MiB of data onto a
mounted SMB share three ways, in the same run, on the same mount:

  agent     POST /v1/storage/smb/volumes (nqrust's sparse clone)
  cp        cp --sparse=always IMAGE <share>/cp.raw
  qemu-img  qemu-img convert -O raw IMAGE <share>/qemu.raw

and print wall time, bytes the server wrote for it (the wchar delta
of the smbd processes: the data that crossed the wire into the file) and
bytes allocated on the server's disk, each with its ratio to the agent.
"""

import argparse
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

MiB, GiB = 1 << 20, 1 << 30


def smbd_rchar(conf):
    """Bytes written by every smbd process of this instance (found by the
    private smb.conf path in its argv: connection processes keep it)."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                if conf.encode() not in f.read():
                    continue
            with open("/proc/%s/io" % pid) as f:
                for line in f:
                    if line.startswith("wchar:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def du(path):
    return os.stat(path).st_blocks * 512


def measure(name, fn, pgid, target):
    before = smbd_rchar(pgid)
    t0 = time.monotonic()
    fn()
    took = time.monotonic() - t0
    time.sleep(0.2)  # let smbd account the last packets
    return {"name": name, "secs": took, "wire": smbd_rchar(pgid) - before,
            "alloc": du(target)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--size", type=int, default=GiB)
    ap.add_argument("--data", type=int, default=64 * MiB)
    args = ap.parse_args()
    os.environ["NQRUST_BUILD_DIR"] = os.path.abspath(args.build)

    from fixtures_agent import Agent, new_id
    from smbd import Smbd
    from test_agent_volumes import make_sparse_image

    with Smbd() as s:
        a = Agent().start()
        try:
            bid = new_id()
            st, m = a.mount(backend_id=bid, server=s.host, share="guest",
                            mount_options="port=%d" % s.port)
            assert st == 200, m
            img = make_sparse_image(os.path.join(a.image_dir, "bench.raw"), args.size,
                                    args.data)
            subprocess.run(["cat", img], stdout=subprocess.DEVNULL, check=True)  # warm cache
            share = s.shares["guest"]
            pgid = s.conf
            vid = new_id()

            def agent_clone():
                st, r = a.request("POST", "/v1/storage/smb/volumes",
                                  {"backend_id": bid, "volume_id": vid, "image": "bench.raw"},
                                  timeout=600)
                assert st == 201, r

            rows = [
                measure("agent", agent_clone, pgid, os.path.join(share, "smb-%s.raw" % vid)),
                measure("cp --sparse=always", lambda: subprocess.run(
                    ["cp", "--sparse=always", img, os.path.join(m["volume_dir"], "cp.raw")],
                    check=True), pgid, os.path.join(share, "cp.raw")),
                measure("qemu-img convert", lambda: subprocess.run(
                    ["qemu-img", "convert", "-O", "raw", img,
                     os.path.join(m["volume_dir"], "qemu.raw")], check=True),
                    pgid, os.path.join(share, "qemu.raw")),
            ]
            for n in ("cp.raw", "qemu.raw"):
                subprocess.run(["cmp", img, os.path.join(share, n)], check=True)
            subprocess.run(["cmp", img, os.path.join(share, "smb-%s.raw" % vid)], check=True)
        finally:
            a.cleanup()

    base = rows[0]
    print("clone of a %d MiB image holding %d MiB of data onto an SMB share (FUSE driver)"
          % (args.size // MiB, args.data // MiB))
    print("%-20s %9s %8s %14s %8s %12s %8s" % ("tool", "seconds", "x agent", "smbd wrote MiB",
                                              "x agent", "alloc MiB", "x agent"))
    for r in rows:
        print("%-20s %9.2f %8.2f %14.1f %8.2f %12.1f %8.2f" % (
            r["name"], r["secs"], r["secs"] / base["secs"], r["wire"] / MiB,
            r["wire"] / max(base["wire"], 1), r["alloc"] / MiB,
            r["alloc"] / max(base["alloc"], 1)))


if __name__ == "__main__":
    main()
