#!/usr/bin/env python3
"""bench/fsync: what durable fsync costs on an nqrust-smbfs mount.

One private smbd, its guest share mounted twice by the bridge:

  durable   the default: fsync/fdatasync is a zero-length SMB2 WRITE with
            SMB2_WRITEFLAG_WRITE_THROUGH, which smbd answers after fsync()
            of the file (src/smbfs/durable.c)
  before    the same mount with `nostrictsync` (cifs' meaning): fsync is
            not sent to the server, as the bridge behaved before
  local     a file in the share's backing directory, no SMB at all: what
            the server's own disk does with the same job

The job is fio randwrite, 4 KiB, psync, one file, with an fsync after
every N writes (N = 0: none), plus fio's O_DSYNC variant (--sync=dsync,
every write write-through) on the durable mount. Then, on a second smbd
that audits its own fsyncs (Smbd(audit=True)), one short run per mount
counts the server-side fsyncs next to the fsyncs fio issued. Each job
runs --rounds times (interleaved) and the best run counts: the machines
this runs on are shared, and a slow run says little about the mechanism.

Prints job, IOPS, MB/s, p99 write completion latency, p99 fsync latency
and the IOPS ratios durable/before and durable/local. Needs root (FUSE)
and the Debian package fio. Exit 1 on a setup failure, 2 when smbd did
fewer fsyncs than fio asked for on the durable mount (or any on the other).
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
FSYNC_EVERY = (0, 1, 8, 32)
MOUNT_TIMEOUT = 60
FIO_SLACK = 60  # seconds a job may run past --runtime before we give up


class SetupError(Exception):
    pass


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split(" ")[4].encode().decode("unicode_escape") == path
                   for line in f)


def unmount(path):
    """umount (lazy if busy) and wait for the bridge process to exit."""
    if not mounted(path):
        return
    if subprocess.run(["umount", "-c", path], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-c", "-l", path], capture_output=True)
    deadline = time.monotonic() + 10
    while mounted(path) and time.monotonic() < deadline:
        time.sleep(0.05)


class Mounts:
    """Bridge mounts under one temp dir, all unmounted by close()."""

    def __init__(self, binary):
        self.binary = binary
        self.base = tempfile.mkdtemp(prefix="nqrust-bench-fsync-")
        self.points = []

    def mount(self, smbd, extra=""):
        mp = os.path.join(self.base, "mnt%d" % len(self.points))
        os.mkdir(mp)
        self.points.append(mp)
        opts = "guest,port=%d%s" % (smbd.port, ("," + extra) if extra else "")
        argv = [self.binary, smbd.unc("guest"), mp, "-o", opts]
        r = subprocess.run(argv, capture_output=True, timeout=MOUNT_TIMEOUT)
        if r.returncode != 0 or not mounted(mp):
            raise SetupError("%s failed (exit %d): %s" % (
                " ".join(argv), r.returncode, r.stderr.decode(errors="replace").strip()))
        return mp

    def unmount_all(self):
        for mp in reversed(self.points):
            unmount(mp)
            if mounted(mp):
                print("warning: %s still mounted" % mp, file=sys.stderr)

    def close(self):
        self.unmount_all()
        if not any(mounted(mp) for mp in self.points):
            shutil.rmtree(self.base, ignore_errors=True)


def fio(path, args, fsync=0, dsync=False, number_ios=None):
    """Run one fio job on a fresh file at path; return its JSON job."""
    argv = ["fio", "--name=bench", "--filename=" + path, "--ioengine=psync",
            "--rw=randwrite", "--bs=4k", "--size=%dm" % args.size_mib,
            "--fallocate=none", "--randrepeat=1", "--output-format=json"]
    if number_ios:
        argv.append("--number_ios=%d" % number_ios)
    else:
        argv += ["--runtime=%d" % args.runtime, "--time_based=0"]
    if fsync:
        argv.append("--fsync=%d" % fsync)
    if dsync:
        argv.append("--sync=dsync")
    try:
        r = subprocess.run(argv, capture_output=True, timeout=args.runtime + FIO_SLACK)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
    if r.returncode != 0:
        raise SetupError("fio on %s failed (exit %d): %s" % (
            path, r.returncode, (r.stderr or r.stdout).decode(errors="replace").strip()))
    out = r.stdout.decode()
    job = json.loads(out[out.index("{"):])["jobs"][0]
    if job["error"]:
        raise SetupError("fio on %s: error %d" % (path, job["error"]))
    return job


def p99_ms(lat):
    pct = lat.get("percentile") or {}
    v = pct.get("99.000000")
    return None if v is None else v / 1e6


def row(name, job):
    w = job["write"]
    s = job.get("sync") or {}
    return {"name": name, "iops": w["iops"], "mbs": w["bw_bytes"] / 1e6,
            "clat99": p99_ms(w["clat_ns"]),
            "sync99": p99_ms(s.get("lat_ns", {})) if s.get("total_ios") else None,
            "writes": w["total_ios"], "fsyncs": s.get("total_ios", 0)}


def ms(v):
    return "-" if v is None else "%.3f" % v


def ratio(a, b):
    return "-" if not b else "%.2f" % (a / b)


def print_table(rows):
    print("%-22s %9s %8s %12s %12s %10s %10s" % (
        "job", "IOPS", "MB/s", "p99 clat ms", "p99 fsync ms", "x before", "x local"))
    for n in FSYNC_EVERY:
        tag = "fsync=%d" % n
        d, b, l = (rows[(t, n)] for t in ("durable", "before", "local"))
        for t, r in (("durable", d), ("before", b), ("local", l)):
            print("%-22s %9.0f %8.2f %12s %12s %10s %10s" % (
                "%s %s" % (t, tag), r["iops"], r["mbs"], ms(r["clat99"]), ms(r["sync99"]),
                ratio(r["iops"], b["iops"]) if t == "durable" else "",
                ratio(r["iops"], l["iops"]) if t == "durable" else ""))
    if ("durable", "dsync") in rows:
        r, b = rows[("durable", "dsync")], rows[("before", 0)]
        print("%-22s %9.0f %8.2f %12s %12s %10s %10s" % (
            "durable O_DSYNC", r["iops"], r["mbs"], ms(r["clat99"]), "-",
            ratio(r["iops"], b["iops"]), ratio(r["iops"], rows[("local", 1)]["iops"])))
    print("x before: IOPS of durable / IOPS of the nostrictsync mount with the same job;")
    print("x local: IOPS of durable / IOPS of the same job on the server's backing file")
    print("(O_DSYNC is compared with before fsync=0 and local fsync=1).")


def keep_best(rows, key, r):
    """Best of the rounds: this machine is shared, a slow run is noise."""
    if key not in rows or r["iops"] > rows[key]["iops"]:
        rows[key] = r
    print("  %-8s %-9s %8.0f IOPS" % (key[0], key[1] if key[1] == "dsync" else
                                      "fsync=%d" % key[1], r["iops"]), flush=True)


def measure(smbd, mounts, args):
    targets = {"durable": mounts.mount(smbd), "before": mounts.mount(smbd, "nostrictsync"),
               "local": smbd.shares["guest"]}
    for t, d in targets.items():  # the first job on a fresh mount runs slow
        fio(os.path.join(d, "warmup.dat"), args, number_ios=2048)
    rows = {}
    for rnd in range(args.rounds):
        print("round %d of %d" % (rnd + 1, args.rounds), flush=True)
        for n in FSYNC_EVERY:
            for t, d in targets.items():
                keep_best(rows, (t, n), row(t, fio(
                    os.path.join(d, "%s-%d.dat" % (t, n)), args, fsync=n)))
        if not args.no_dsync:
            keep_best(rows, ("durable", "dsync"), row("durable", fio(
                os.path.join(targets["durable"], "dsync.dat"), args, dsync=True)))
    return rows


def count_server_fsyncs(mounts, args):
    """fsyncs fio issued vs fsyncs smbd did, for one short run per mount."""
    out = []
    s = Smbd(audit=True).start()
    try:
        for name, extra in (("durable", ""), ("before", "nostrictsync")):
            mp = mounts.mount(s, extra)
            fname = "audit-%s.dat" % name
            job = fio(os.path.join(mp, fname), args, fsync=8, number_ios=args.audit_ios)
            time.sleep(0.2)  # smbd's log is written as it goes; let it land
            out.append((name, job["write"]["total_ios"], job["sync"]["total_ios"],
                        s.count_fsyncs(os.path.join(s.shares["guest"], fname))))
            unmount(mp)  # before the server goes away
    finally:
        s.stop()
    return out


def preflight(args):
    if os.geteuid() != 0:
        raise SetupError("needs root (FUSE mounts are root-only here)")
    if not os.access(args.binary, os.X_OK):
        raise SetupError("%s is not built (run `ninja -C %s`)" % (args.binary, args.build))
    if shutil.which("fio") is None:
        raise SetupError("fio is not installed (Debian package fio)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--size-mib", type=int, default=64, help="file size per job")
    ap.add_argument("--runtime", type=int, default=8, help="seconds per job at most")
    ap.add_argument("--rounds", type=int, default=2, help="runs per job; the best counts")
    ap.add_argument("--audit-ios", type=int, default=512,
                    help="writes in the fsync-counting run (fsync every 8)")
    ap.add_argument("--no-dsync", action="store_true", help="skip the O_DSYNC job")
    args = ap.parse_args()
    args.binary = os.path.join(os.path.abspath(args.build), "nqrust-smbfs")

    t0 = time.monotonic()
    try:
        preflight(args)
        mounts = Mounts(args.binary)
        try:
            s = Smbd().start()
            try:
                rows = measure(s, mounts, args)
            finally:
                mounts.unmount_all()  # while the server is still up
                s.stop()
            audit = count_server_fsyncs(mounts, args)
        finally:
            mounts.close()
    except (SetupError, RuntimeError, subprocess.TimeoutExpired) as e:
        print("bench/fsync: %s" % e, file=sys.stderr)
        sys.exit(1)

    print()
    print("fio randwrite 4 KiB psync, %d MiB file, fsync every N writes, at most %d s a job,"
          " best of %d" % (args.size_mib, args.runtime, args.rounds))
    print_table(rows)
    print()
    print("server-side fsyncs (smbd full_audit), fio fsync every 8 writes:")
    print("%-10s %10s %14s %14s" % ("mount", "fio writes", "fio fsyncs", "smbd fsyncs"))
    bad = False
    for name, writes, fsyncs, server in audit:
        print("%-10s %10d %14d %14d" % (name, writes, fsyncs, server))
        bad |= server < fsyncs if name == "durable" else server != 0
    print("(total %.0f s)" % (time.monotonic() - t0))
    if bad:
        print("bench/fsync: smbd's fsyncs do not match the mounts' promise", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
