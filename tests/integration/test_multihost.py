"""Issue 12, "Must show": several hosts on one share (fixtures_multihost.py).

One smbd, the manager on PostgreSQL, the built-in local agent (reporting
100 MiB, so it never takes a VM here) and agents a (1024 MiB), b (2048 MiB)
and c (1024 MiB) in network namespaces, each with its own state, mount
root, TLS port and 6 s leases; a and b are enrolled by the fixture, c by
the enrollment test. The tests run in file order and share the module's
daemons; the last one checks the captures of the whole module."""

import os
import re
import subprocess
import time

import pytest

from daemon import wait_for
from fixtures_multihost import LEASE_SECONDS, now_ms

def err_code(body):
    return body.get("error", {}).get("code") if isinstance(body, dict) else None


def debugfs_cat(image, path):
    return subprocess.run(["/usr/sbin/debugfs", "-R", "cat " + path, image],
                          capture_output=True, text=True).stdout


def ticks(agent, vm_id):
    """The last tick number the looper guest reported on agent."""
    found = re.findall(r"NQRUST-TICK (\d+)", agent.serial(vm_id))
    return int(found[-1]) if found else 0


def test_enrollment_pins_tls_and_refuses_wrong_fingerprint_or_token(multihost):
    c = multihost
    m, agent = c.manager, c.agents["c"]
    presented = agent.fingerprint()
    wrong = ":".join(["AB"] * 32)
    st, body = c.enroll("c", fingerprint=wrong)
    assert st == 422 and err_code(body) == "agent_fingerprint_mismatch", body
    msg = body["error"]["message"]
    assert wrong in msg.upper() and presented in msg.upper(), msg
    st, body = c.enroll("c", token="not-the-token-" + "x" * 20)
    assert st == 422 and err_code(body) == "agent_auth_failed", body
    st, body = m.request("POST", "/v1/hosts", {"name": "plain", "token": agent.token,
                                               "agent_url": agent.url.replace("https", "http")})
    assert st == 400 and body["error"]["field"] == "agent_url", body

    # Given fingerprint (lower case, no colons: any spelling is accepted).
    st, h = c.enroll("c", fingerprint=presented.replace(":", "").lower())
    assert st == 201, h
    assert h["fingerprint"] == presented and h["fingerprint_source"] == "given", h
    assert h["agent_id"] and h["status"] == "ok" and "token" not in h, h
    st, body = c.enroll("c", fingerprint=presented)
    assert st == 409 and err_code(body) == "host_exists", body
    st, _ = m.request("DELETE", "/v1/hosts/" + h["id"])
    assert st == 204

    # Trust on first use records what the agent presented.
    st, h = c.enroll("c")
    assert st == 201 and h["fingerprint_source"] == "tofu", h
    assert h["fingerprint"] == presented, h
    st, hosts = m.request("GET", "/v1/hosts")
    assert {x["name"] for x in hosts} >= {"local", "mh-a", "mh-b", "mh-c"}, hosts
    assert all(x["status"] == "ok" for x in hosts), hosts
    assert agent.token not in str(hosts) and agent.token.encode() not in m.db_bytes()

    cap = c.captures["c"]
    assert cap.self_test(agent.net_host.ip), "the capture sees nothing"
    assert not cap.found(c.secrets), "secret in clear on the wire"
    # Out of the way for the placement tests.
    st, _ = m.request("DELETE", "/v1/hosts/" + h["id"])
    assert st == 204


def test_qemu_guest_migrates_and_boots_from_the_same_file(multihost):
    c = multihost
    st, vm = c.create_vm("mig", host="a")
    assert st == 201, vm
    assert vm["host_id"] == c.agents["a"].host_id, vm
    out = c.boot_until_poweroff(vm["id"])
    assert "NQRUST-MARKER-ABSENT" in out, out[-3000:]
    vm = c.vm(vm["id"])
    backing = c.backing(vm)
    assert debugfs_cat(backing, "/marker").strip() == "booted"
    before = os.stat(backing)
    files = set(os.listdir(os.path.dirname(backing)))

    st, r = c.manager.request("POST", "/v1/vms/%s/migrate" % vm["id"],
                              {"host_id": c.agents["b"].host_id})
    assert st == 200, r
    assert r["host_id"] == c.agents["b"].host_id and r["host_name"] == "mh-b", r
    assert vm["id"] not in c.agents["a"].vm_ids()
    st, r = c.manager.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200 and r["state"] == "running", r
    out = c.boot_until_poweroff(vm["id"])
    assert "NQRUST-MARKER-FOUND 1" in out, out[-3000:]

    after = c.vm(vm["id"])
    assert os.path.basename(after["volume"]["path"]) == os.path.basename(backing)
    now = os.stat(backing)
    assert (now.st_dev, now.st_ino) == (before.st_dev, before.st_ino)
    leases = {f for f in os.listdir(os.path.dirname(backing)) if f.endswith(".lease")}
    assert set(os.listdir(os.path.dirname(backing))) - leases == files - leases
    st, ev = c.manager.request("GET", "/v1/events?object_id=%s&action=vm.migrated" % vm["id"])
    c.delete_vm(vm["id"])
    assert not os.path.exists(backing)
    assert st == 200 and ev and ev[0]["action"] == "vm.migrated", ev  # contract: events


def test_placement_honours_memory_backend_status_and_draining(multihost):
    c = multihost
    m = c.manager
    a, b = c.agents["a"], c.agents["b"]

    def refused(memory, host=None):
        st, body = c.create_vm("nope", host=host, memory_mib=memory)
        assert st == 422, body
        return body["error"]

    # Memory: only b (2048) fits 1536; a (1024) is unsuitable by name.
    st, vm = c.create_vm("big", memory_mib=1536)
    assert st == 201 and vm["host_id"] == b.host_id, vm
    c.delete_vm(vm["id"])
    e = refused(1536, host="a")
    assert e["code"] == "host_unsuitable" and e["field"] == "host_id", e
    assert "memory" in e["message"], e

    # Draining: b takes nothing new; a is the only one left for 512 MiB.
    st, h = m.request("PATCH", "/v1/hosts/" + b.host_id, {"draining": True})
    assert st == 200 and h["draining"] is True and h["status"] == "draining", h
    try:
        e = refused(1536)
        assert e["code"] == "no_host", e
        e = refused(256, host="b")
        assert e["code"] == "host_unsuitable" and "drain" in e["message"], e
        st, vm = c.create_vm("small", memory_mib=512)
        assert st == 201 and vm["host_id"] == a.host_id, vm
        c.delete_vm(vm["id"])

        # Backend status: a loses the share (not the manager): the backend
        # is not ok there, so nothing is placed on a.
        c.net.block_share("a")
        bid = c.backend()["id"]

        def bad_on_a():
            st, bk = m.request("GET", "/v1/storage/backends/" + bid)
            on_a = [x for x in bk["hosts"] if x["host_id"] == a.host_id]
            return on_a and on_a[0]["status"] != "ok" and bk
        bk = wait_for(bad_on_a, timeout=60, interval=0.5)
        assert bk and bk["status"] != "ok", bk  # the worst of its hosts
        e = refused(256)
        assert e["code"] == "no_host", e
        e = refused(256, host="a")
        assert e["code"] == "host_unsuitable" and "backend" in e["message"], e
    finally:
        if c.net.hosts["a"].share_blocked:
            c.net.block_share("a", False)
        m.request("PATCH", "/v1/hosts/" + b.host_id, {"draining": False})
    assert c.wait_host("b", "ok")["draining"] is False

    def ok_on_a():
        st, bk = m.request("GET", "/v1/storage/backends/" + c.backend()["id"])
        return all(x["status"] == "ok" for x in bk["hosts"] if x["host_id"] == a.host_id)
    assert wait_for(ok_on_a, timeout=90, interval=0.5), "backend not ok on a again"


def test_partitioned_host_fences_and_ha_restarts_after_lease_expiry(multihost):
    c = multihost
    a, b = c.agents["a"], c.agents["b"]
    st, vm = c.create_vm("ha", image="looper.ext4", host="a", ha=True)
    assert st == 201 and vm["ha"] is True, vm
    assert wait_for(lambda: ticks(a, vm["id"]) >= 3, timeout=240), a.serial(vm["id"])
    vm = c.vm(vm["id"])
    assert os.path.exists(c.backing(vm)), vm
    w = c.watcher(vm)
    try:
        assert wait_for(lambda: w.lease_records("mh-a"), timeout=30), w.leases
        assert w.of_host("a") and not w.of_host("b")

        cut = now_ms()
        c.net.partition("a")
        moved = wait_for(lambda: (lambda v: v["host_id"] == b.host_id
                                  and v["state"] == "running" and v)(c.vm(vm["id"])),
                         timeout=180, interval=0.5)
        assert moved, c.vm(vm["id"])
        assert wait_for(lambda: ticks(b, vm["id"]) >= 3, timeout=240), b.serial(vm["id"])

        # A fenced itself: its agent (reachable over its unix socket) says so.
        st, on_a = a.request("GET", "/v1/vms/" + vm["id"])
        assert st == 200 and on_a["fenced"] is True and on_a["state"] == "error", on_a
        assert "lease" in on_a["error"], on_a

        # From the lease history and the process lists.
        last_a = w.lease_records("mh-a")[-1][1]
        expiry = last_a["expires_at_ms"]
        a_vmms, b_vmms = w.of_host("a"), w.of_host("b")
        assert a_vmms and b_vmms, w.timeline
        # A's VMM let go of the file (no fd left) before the lease expired. Its
        # process may linger in exit while the FUSE mount of the cut-off host
        # fails its last requests: that is reported, not required.
        for p in a_vmms:
            assert p["gone_ms"] is not None and p["gone_ms"] < expiry, (p, last_a, cut)
        for p in b_vmms:
            assert p["start_ms"] >= expiry, (p, last_a)
        assert not w.overlaps(), w.overlaps()
        first_b = min(t for t, rec in w.lease_records("mh-b"))
        assert not [t for t, rec in w.lease_records("mh-a") if t > first_b], w.leases

        # A returns: the VM stays on b; a's agent forgets it, never restarts it.
        healed = now_ms()
        c.net.heal("a")
        c.wait_host("a", "ok", timeout=90)
        assert wait_for(lambda: vm["id"] not in a.vm_ids(), timeout=60), a.vm_ids()
        time.sleep(2 * LEASE_SECONDS)
        assert not [p for p in w.of_host("a") if p["first_ms"] > healed], w.timeline
        assert not w.overlaps(), w.overlaps()
        v = c.vm(vm["id"])
        assert v["host_id"] == b.host_id and v["state"] == "running", v
        st, ev = c.manager.request("GET", "/v1/events?object_id=" + vm["id"])
        assert st == 200 and "vm.ha_restarted" in [e["action"] for e in ev], ev
        st, ev = c.manager.request("GET", "/v1/events?object_id=%s&action=host.unreachable"
                                   % a.host_id)
        assert st == 200, ev
    finally:
        w.stop()
        if c.net.hosts["a"].partitioned:
            c.net.heal("a")
            c.wait_host("a", "ok", timeout=90)
    c.delete_vm(vm["id"])


def test_rotation_and_removal_reach_every_host(multihost):
    c = multihost
    m = c.manager
    a, b = c.agents["a"], c.agents["b"]
    st, bk = m.create_backend("mh-secure", c.smb_config("secure", user=True))
    assert st == 201, bk
    bid = bk["id"]
    vms = []
    for host in ("a", "b"):
        st, vm = c.create_vm("rot-" + host, image="looper.ext4", backend_id=bid, host=host)
        assert st == 201, vm
        vms.append(vm["id"])
    assert wait_for(lambda: ticks(a, vms[0]) >= 2 and ticks(b, vms[1]) >= 2, timeout=240)
    assert a.cred_files(bid) and b.cred_files(bid)
    before = {n: c.agents[n].cred_snapshot() for n in ("a", "b")}

    new = "R0tated p,a=s's\"w$ " + os.urandom(4).hex()
    c.secrets.append(new)
    r = subprocess.run(["/usr/bin/smbpasswd", "-c", c.smbd.conf, "-s", c.smbd.user],
                       input=((new + "\n") * 2).encode(), capture_output=True)
    assert r.returncode == 0, r.stderr
    c.smbd.password = new
    st, body = m.request("PATCH", "/v1/storage/backends/" + bid, {"rotate_password": new})
    assert st == 200, body
    for n in ("a", "b"):
        assert c.agents[n].cred_snapshot() != before[n], "credentials on %s unchanged" % n
    at = (ticks(a, vms[0]), ticks(b, vms[1]))
    assert wait_for(lambda: ticks(a, vms[0]) > at[0] + 2 and ticks(b, vms[1]) > at[1] + 2,
                    timeout=60), (a.serial(vms[0])[-500:], b.serial(vms[1])[-500:])

    for vm_id in vms:
        c.delete_vm(vm_id)
    c.net.partition("b")
    try:
        c.wait_host("b", "unreachable", timeout=90)
        st, body = m.request("DELETE", "/v1/storage/backends/" + bid)
        assert st == 409 and err_code(body) == "host_unreachable", body
        assert "mh-b" in body["error"]["message"], body
        assert b.cred_files(bid), "b's credentials vanished while it was unreachable"
    finally:
        c.net.heal("b")
    c.wait_host("b", "ok", timeout=90)
    st, body = m.request("DELETE", "/v1/storage/backends/" + bid)
    assert st == 204, body
    for n in ("local", "a", "b"):
        ag = c.agents[n]
        assert not ag.cred_files(bid), (n, ag.cred_files(bid))
        assert bid not in ag.mounted_backends(), n
    st, ev = m.request("GET", "/v1/events?object_id=%s&action=backend.rotated" % bid)
    assert st == 200 and ev, ev  # contract: events


def test_no_secret_crossed_any_link_in_clear(multihost):
    """Every capture of the module: enrollment, backend attach with a
    password, rotation, migration, VM operations."""
    c = multihost
    assert len(c.secrets) >= 5, "fixture incomplete: %d secrets" % len(c.secrets)
    for name, cap in c.captures.items():
        assert cap.self_test(c.net.hosts[name].ip), "capture on %s sees nothing" % name
        assert len(cap.frames) > 20, (name, len(cap.frames))
        leaked = cap.found(c.secrets)
        assert not leaked, "in clear on %s's link: %d secret(s)" % (name, len(leaked))
