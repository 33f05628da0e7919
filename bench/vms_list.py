#!/usr/bin/env python3
"""bench/vms_list: GET /v1/vms?limit=100 against GET /v1/storage/backends on
the same manager (PostgreSQL, or SQLite with --engine sqlite), with 1000
VMs over 3 hosts, at 1 and 32 keep-alive connections; then the same with
one host's agent SIGSTOPped, to show a dead host does not slow the list.

Hosts: the built-in "local" agent and two agents enrolled over TLS
(POST /v1/hosts), all real. VM rows: inserted straight into the database
with the columns the manager's own insert writes (vms + a ready volume
each, spread round-robin over the 3 hosts, state running): creating 1000
VMs through the API would clone 1000 images; the list reads the same rows
either way. The reconciler then runs against the real agents as usual.

Prints req/s for each case and the ratio vms/backends (target: the VM
list within 2x of the backends list)."""

import argparse
import http.client
import os
import signal
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def load(port, token, path, conns, seconds):
    """req/s of GET path over conns keep-alive connections for seconds."""
    counts = [0] * conns
    errors = []
    stop = time.monotonic() + seconds

    def run(i):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        hdrs = {"Authorization": "Bearer " + token}
        try:
            while time.monotonic() < stop:
                c.request("GET", path, headers=hdrs)
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(r.status)
                    return
                counts[i] += 1
        except OSError as e:
            errors.append(str(e))
        finally:
            c.close()

    ts = [threading.Thread(target=run, args=(i,)) for i in range(conns)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise RuntimeError("GET %s failed: %s" % (path, errors[:3]))
    return sum(counts) / (time.monotonic() - t0)


def insert_vms(m, pg, hosts, n, backend_id):
    """n VM rows (and their ready volumes) as vms.c's insert_vm writes them."""
    now = int(time.time())
    rows_vm, rows_vol = [], []
    for i in range(n):
        vid, volid = str(uuid.uuid4()), str(uuid.uuid4())
        h = hosts[i % len(hosts)]
        rows_vm.append("('%s', 'bench-%04d', 1, 128, 'rootfs.ext4', '%s', 'running', '%s',"
                       " 'vmlinux', '', %d, %d, 0)" % (vid, i, backend_id, h, now + i,
                                                       now + i))
        rows_vol.append("('%s', '%s', '%s', '/bench/%s.raw', 16777216, 4096, 'ready', %d)"
                        % (volid, backend_id, vid, volid, now))
    sql = ("INSERT INTO images (id, name, size_bytes, created_at) VALUES ('rootfs.ext4',"
           " 'rootfs.ext4', 16777216, %d) ON CONFLICT (id) DO NOTHING;" % now +
           "INSERT INTO vms (id, name, vcpus, memory_mib, image_id, backend_id, state,"
           " host_id, kernel, initrd, created_at, updated_at, ha) VALUES " +
           ", ".join(rows_vm) + ";" +
           "INSERT INTO volumes (id, backend_id, vm_id, path, size_bytes,"
           " allocated_bytes, state, created_at) VALUES " + ", ".join(rows_vol) + ";")
    if pg:
        import subprocess
        from fixtures_pg import PG_BIN, PG_USER
        subprocess.run([os.path.join(PG_BIN, "psql"), "-h", pg.sock_dir, "-U", PG_USER,
                        "-d", m.db_name, "-v", "ON_ERROR_STOP=1", "-q"],
                       input=sql.encode(), stdout=subprocess.DEVNULL, check=True)
    else:
        import sqlite3
        db = sqlite3.connect(m.database[len("sqlite:"):], timeout=30)
        db.executescript(sql)
        db.close()


def measure(m, token, seconds):
    out = {}
    for conns in (1, 32):
        v = load(m.port, token, "/v1/vms?limit=100", conns, seconds)
        b = load(m.port, token, "/v1/storage/backends", conns, seconds)
        out[conns] = (v, b)
        print("  %2d connection%s: GET /v1/vms?limit=100 %7.0f req/s   "
              "GET /v1/storage/backends %7.0f req/s   ratio backends/vms %.2f" % (
                  conns, " " if conns == 1 else "s", v, b, b / v), flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "build"))
    ap.add_argument("--engine", choices=("postgres", "sqlite"), default="postgres")
    ap.add_argument("--vms", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    os.environ["NQRUST_BUILD_DIR"] = os.path.abspath(args.build)

    from fixtures_agent import Agent
    from fixtures_manager import Manager
    from fixtures_pg import PgCluster

    pg = PgCluster().start() if args.engine == "postgres" else None
    agents, m = [], None
    try:
        local = Agent().start()
        agents.append(local)
        m = Manager(local, engine=args.engine, pg=pg,
                    extra_args=["--log-level", "warn"]).start()
        hosts = ["local"]
        for i in range(2):
            a = Agent(tcp=True).start()
            agents.append(a)
            st, h = m.request("POST", "/v1/hosts", {
                "name": "bench-%d" % i, "agent_url": "https://127.0.0.1:%d" % a.tcp_port,
                "token": a.token, "fingerprint": a.tls_fingerprint})
            assert st == 201, h
            hosts.append(h["id"])
        insert_vms(m, pg, hosts, args.vms, "localfile-default")
        token = m.login()["token"]
        st, page = m.request("GET", "/v1/vms?limit=100")
        assert st == 200 and len(page) == 100, page
        print("nqrust bench vms_list: %d VMs over %d hosts, manager on %s" % (
            args.vms, len(hosts), args.engine), flush=True)
        print("all hosts up:")
        up = measure(m, token, args.seconds)
        os.kill(agents[1].proc.pid, signal.SIGSTOP)
        try:
            time.sleep(3)  # the heartbeat and the reconciler now wait on it
            print("host %s SIGSTOPped:" % hosts[1])
            down = measure(m, token, args.seconds)
        finally:
            os.kill(agents[1].proc.pid, signal.SIGCONT)
        worst = max(b / v for r in (up, down) for v, b in r.values())
        slow = max(up[c][0] / down[c][0] for c in up)
        print("worst ratio backends/vms: %.2f (target <= 2.00: %s); "
              "a dead host changes the VM list rate by x%.2f" % (
                  worst, "met" if worst <= 2.0 else "NOT met", 1 / slow))
    finally:
        if m:
            m.cleanup()
        for a in agents:
            a.cleanup()
        if pg:
            pg.stop()


if __name__ == "__main__":
    main()
