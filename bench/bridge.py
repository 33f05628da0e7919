#!/usr/bin/env python3
"""bench/bridge: fio through nqrust-smbfs against libsmbclient called
directly, in the same run, on one private smbd.

Columns:
  direct    bench/smbc_direct (built by meson, not installed): the same
            pattern with libsmbclient, one process and one connection per
            job (the library is not thread-safe)
  conns=1   the bridge over one connection (the bridge before the pool)
  conns=N   the bridge over its pool (default N = 4)

Jobs (fio, O_DIRECT so the client's page cache is out of the picture; the
server's page cache holds the file in every column):
  seq write 1M  qd4   rw=write,    bs=1M, libaio iodepth=4 (direct: 1 conn)
  seq read 1M   qd4   rw=read,     bs=1M, libaio iodepth=4 (direct: 1 conn)
  seq write 1M  qd1   rw=write,    bs=1M, psync            (direct: 1 conn)
  seq read 1M   qd1   rw=read,     bs=1M, psync            (direct: 1 conn)
  rand read 4k  4 jobs  numjobs=4, psync                   (direct: 4 conns)
  rand write 4k qd1   psync                                (direct: 1 conn)
  rand write 4k qd16  libaio iodepth=16                    (direct: 16 conns)

  direct+fl the write jobs again with libsmbclient flushing the file on the
            server after every --replay-mib written (default 64, the
            bridge's replay journal cap): the bridge must flush that often
            to keep acknowledged writes replayable across a server crash
            (docs/smb-durability.md), plain libsmbclient never flushes and
            leaves them in the server's page cache. This is the yardstick
            with the same promise as the bridge.

Prints MB/s and IOPS per column and the ratios conns=N/direct,
conns=N/direct+fl and conns=N/conns=1. Targets (issue 13): sequential >= 0.8x direct, random
4 KiB read at 4 jobs >= 2x conns=1. Needs root (FUSE) and fio.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from smbd import Smbd  # noqa: E402

MiB = 1 << 20
MOUNT_TIMEOUT = 60
SLACK = 60

# name, fio args, direct (mode, bs, jobs)
JOBS = [
    ("seq write 1M qd4", ["--rw=write", "--bs=1M", "--ioengine=libaio", "--iodepth=4"],
     ("write", MiB, 1)),
    ("seq read 1M qd4", ["--rw=read", "--bs=1M", "--ioengine=libaio", "--iodepth=4"],
     ("read", MiB, 1)),
    ("seq write 1M qd1", ["--rw=write", "--bs=1M", "--ioengine=psync"], ("write", MiB, 1)),
    ("seq read 1M qd1", ["--rw=read", "--bs=1M", "--ioengine=psync"], ("read", MiB, 1)),
    ("rand read 4k 4 jobs", ["--rw=randread", "--bs=4k", "--ioengine=psync",
                             "--numjobs=4"], ("randread", 4096, 4)),
    ("rand write 4k qd1", ["--rw=randwrite", "--bs=4k", "--ioengine=psync"],
     ("randwrite", 4096, 1)),
    ("rand write 4k qd16", ["--rw=randwrite", "--bs=4k", "--ioengine=libaio",
                            "--iodepth=16"], ("randwrite", 4096, 16)),
]


class SetupError(Exception):
    pass


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split(" ")[4] == path for line in f)


def unmount(path):
    if not mounted(path):
        return
    if subprocess.run(["umount", path], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", path], capture_output=True)
    deadline = time.monotonic() + 10
    while mounted(path) and time.monotonic() < deadline:
        time.sleep(0.05)


def mount(binary, smbd, mp, opts):
    os.makedirs(mp, exist_ok=True)
    argv = [binary, smbd.unc("guest"), mp, "-o", "guest,port=%d,%s" % (smbd.port, opts)]
    r = subprocess.run(argv, capture_output=True, timeout=MOUNT_TIMEOUT)
    if r.returncode != 0:
        raise SetupError("mount %s failed (exit %d): %s" % (
            opts, r.returncode, r.stderr.decode(errors="replace").strip()))


def make_file(path, size):
    """size bytes of incompressible data, written locally (the share's
    backing dir): the read jobs read it, the write jobs overwrite it."""
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(block)


def fio(path, extra, args):
    argv = ["fio", "--name=bridge", "--filename=" + path, "--direct=1",
            "--size=%dM" % args.file_mib, "--runtime=%d" % args.runtime,
            "--time_based=1", "--group_reporting", "--output-format=json"] + extra
    r = subprocess.run(argv, capture_output=True, timeout=args.runtime + SLACK)
    if r.returncode != 0:
        raise SetupError("fio %s failed: %s" % (" ".join(extra), r.stderr.decode()[-400:]))
    job = json.loads(r.stdout[r.stdout.index(b"{"):])["jobs"][0]
    ios = job["read"]["total_ios"] + job["write"]["total_ios"]
    nbytes = job["read"]["io_bytes"] + job["write"]["io_bytes"]
    secs = max(job["read"]["runtime"], job["write"]["runtime"]) / 1000.0
    return ios / secs, nbytes / secs / 1e6


def direct(binary, smbd, name, spec, args, flush_mib=0):
    mode, bs, jobs = spec
    url = "smb://127.0.0.1:%d/guest/%s" % (smbd.port, name)
    r = subprocess.run([binary, url, mode, str(bs), str(args.file_mib),
                        str(args.runtime), str(jobs), str(flush_mib)],
                       capture_output=True, timeout=args.runtime + SLACK)
    if r.returncode != 0:
        raise SetupError("smbc_direct %s failed: %s" % (mode, r.stderr.decode()[-400:]))
    ios, nbytes, secs = r.stdout.split()
    return int(ios) / float(secs), int(nbytes) / float(secs) / 1e6


def ratio(a, b):
    return "%.2fx" % (a / b) if b else "-"


def run(args):
    build = os.path.abspath(args.build)
    bridge = args.bridge or os.path.join(build, "nqrust-smbfs")
    yard = os.path.join(build, "smbc_direct")
    for p in (bridge, yard):
        if not os.access(p, os.X_OK):
            raise SetupError("%s is not built (ninja -C %s)" % (p, build))
    if shutil.which("fio") is None:
        raise SetupError("fio is not installed (Debian package fio)")
    tmp = tempfile.mkdtemp(prefix="nqrust-bench-bridge-")
    s = Smbd().start()
    mps = {"conns=1": os.path.join(tmp, "m1"),
           "conns=%d" % args.conns: os.path.join(tmp, "mN")}
    try:
        mount(bridge, s, mps["conns=1"], "conns=1")
        mount(bridge, s, mps["conns=%d" % args.conns], "conns=%d" % args.conns)
        make_file(os.path.join(s.shares["guest"], "data"), args.file_mib * MiB)
        rows = []
        for name, extra, spec in JOBS:
            res = {"direct": direct(yard, s, "data", spec, args)}
            if "write" in spec[0]:
                res["direct+fl"] = direct(yard, s, "data", spec, args, args.replay_mib)
            for label, mp in mps.items():
                res[label] = fio(os.path.join(mp, "data"), extra, args)
            rows.append((name, res))
            print_row(name, res, args.conns, flush=True)
        return rows
    finally:
        for mp in mps.values():
            unmount(mp)
        s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def print_header(conns):
    n = "conns=%d" % conns
    print("%-20s %16s %16s %16s %16s %10s %10s %10s" % (
        "job", "direct", "direct+fl", "conns=1", n, n + "/dir", n + "/d+fl",
        n + "/c1"))


def cell(iops, mbs, big):
    return "%8.0f MB/s" % mbs if big else "%8.0f IOPS" % iops


def print_row(name, res, conns, flush=False):
    n = "conns=%d" % conns
    big = "1M" in name
    d, one, many = res["direct"], res["conns=1"], res[n]
    fl = res.get("direct+fl")
    print("%-20s %16s %16s %16s %16s %10s %10s %10s" % (
        name, cell(*d, big), cell(*fl, big) if fl else "-", cell(*one, big),
        cell(*many, big), ratio(many[0], d[0]), ratio(many[0], fl[0]) if fl else "-",
        ratio(many[0], one[0])), flush=flush)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--bridge", help="nqrust-smbfs binary (default: BUILD's)")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--runtime", type=int, default=5, help="seconds per job")
    ap.add_argument("--file-mib", type=int, default=256)
    ap.add_argument("--replay-mib", type=int, default=64,
                    help="direct+fl: flush every this many MiB written")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench/bridge.py needs root (FUSE mounts)", file=sys.stderr)
        return 1
    print("fio O_DIRECT on a %d MiB file, %d s a job; direct = libsmbclient "
          "(one connection per job)" % (args.file_mib, args.runtime))
    print_header(args.conns)
    try:
        run(args)
    except (SetupError, RuntimeError, subprocess.TimeoutExpired) as e:
        print("bench/bridge.py: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
