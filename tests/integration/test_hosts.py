"""Many hosts through the manager (issue 12): a second agent over TCP+TLS on
a loopback port, enrolled with its certificate pinned (given or trust on
first use); refusals for a wrong fingerprint, a wrong token, a duplicate;
draining and removal; placement by memory, draining and backend status; a
backend attached on first use on the second host, rotation reaching both,
removal blocked while a host cannot be reached; cold migration of a VM
(fake Firecracker) between the two agents; a localfile VM refused. The
manager runs on SQLite and on PostgreSQL."""

import os
import signal
import threading

import pytest

from fixtures_agent import Agent
from fixtures_manager import Manager, smb_config, wait_for
from fixtures_vm import create_vm, kill_vmms, put_image, wait_state

MiB = 1 << 20


def vm_agent(fake_fc, memory_mib, tcp):
    a = Agent(tcp=tcp, extra_args=["--firecracker-path", fake_fc.path,
                                   "--report-memory-mib", str(memory_mib)]).start()
    put_image(a, "vmlinux", 0, b"\x7fELF fake kernel for the fake firecracker")
    put_image(a)
    return a


@pytest.fixture
def pair(fake_fc, engine, request):
    """(manager on SQLite or PostgreSQL, local agent A, TLS agent B): A
    reports 512 MiB, B 1024."""
    a = vm_agent(fake_fc, 512, False)
    b = vm_agent(fake_fc, 1024, True)
    pg = request.getfixturevalue("pg_cluster") if engine == "postgres" else None
    m = Manager(a, engine=engine, pg=pg).start()
    yield m, a, b
    for ag in (a, b):
        try:
            os.kill(ag.proc.pid, signal.SIGCONT)
        except (OSError, AttributeError):
            pass
    try:
        st, vms = m.request("GET", "/v1/vms")
        for vm in vms if st == 200 else []:
            m.request("DELETE", "/v1/vms/" + vm["id"])
    finally:
        m.cleanup()
        for ag in (a, b):
            kill_vmms(ag)
            ag.cleanup()


def url_of(agent):
    return "https://127.0.0.1:%d" % agent.tcp_port


def enroll(m, b, name="host-b", **kw):
    body = {"name": name, "agent_url": url_of(b), "token": b.token}
    body.update(kw)
    return m.request("POST", "/v1/hosts", body)


def agent_requests(agent, path):
    """How many requests for path the agent logged."""
    return sum(1 for line in agent.log().splitlines() if "path=" + path + " " in line)


def test_enroll_pinning_and_refusals(pair):
    m, a, b = pair
    # http:// would carry the token in clear: refused before any I/O.
    st, r = m.request("POST", "/v1/hosts", {"name": "x", "agent_url":
                      "http://127.0.0.1:%d" % b.tcp_port, "token": b.token})
    assert st == 400 and r["error"]["field"] == "agent_url", r
    assert "https" in r["error"]["message"]
    st, r = enroll(m, b, token="short")
    assert st == 400 and r["error"]["field"] == "token", r

    # A wrong pin: refused in the handshake, before the token is sent.
    before = agent_requests(b, "/v1/host")
    wrong = ":".join(["AB"] * 32)
    st, r = enroll(m, b, fingerprint=wrong)
    assert st == 422 and r["error"]["code"] == "agent_fingerprint_mismatch", r
    assert wrong in r["error"]["message"] and b.tls_fingerprint in r["error"]["message"]
    assert agent_requests(b, "/v1/host") == before

    st, r = enroll(m, b, token="y" * 32)
    assert st == 422 and r["error"]["code"] == "agent_auth_failed", r

    # Given fingerprint, in lower case without colons.
    st, h = enroll(m, b, fingerprint=b.tls_fingerprint.replace(":", "").lower())
    assert st == 201, h
    assert h["fingerprint"] == b.tls_fingerprint and h["fingerprint_source"] == "given"
    assert h["status"] == "ok" and h["memory_mib"] == 1024 and h["cpus"] >= 1
    assert h["agent_url"] == url_of(b) and h["vm_count"] == 0
    assert "token" not in h

    st, r = enroll(m, b, name="host-b2")
    assert st == 409 and r["error"]["code"] == "host_exists", r
    st, r = m.request("GET", "/v1/hosts")
    assert st == 200 and [x["id"] for x in r] == ["local", h["id"]], r
    assert r[0]["agent_url"] == "unix:" + a.socket and r[0]["status"] == "ok"

    # Removal, then trust on first use records what the agent presents.
    st, _ = m.request("DELETE", "/v1/hosts/" + h["id"])
    assert st == 204
    st, _ = m.request("GET", "/v1/hosts/" + h["id"])
    assert st == 404
    st, h = enroll(m, b)
    assert st == 201 and h["fingerprint_source"] == "tofu", h
    assert h["fingerprint"] == b.tls_fingerprint

    st, r = m.request("DELETE", "/v1/hosts/local")
    assert st == 409 and r["error"]["code"] == "host_builtin", r
    st, r = m.request("PATCH", "/v1/hosts/" + h["id"], {"draining": True})
    assert st == 200 and r["draining"] is True and r["status"] == "draining", r
    st, r = m.request("PATCH", "/v1/hosts/" + h["id"], {"draining": "yes"})
    assert st == 400 and r["error"]["field"] == "draining", r

    # The token is nowhere in the database, nor in any reply.
    m.request("GET", "/v1/hosts")
    assert b.token.encode() not in m.db_bytes()
    assert all(b.token not in str(x) for x in m.replies)


def place(m, bid, name, memory, **kw):
    st, vm = create_vm(m, bid, "rootfs.ext4", name=name, memory_mib=memory, **kw)
    return st, vm


def test_placement_memory_draining_backend_status(pair, smbd):
    m, a, b = pair
    st, hb = enroll(m, b)
    assert st == 201, hb
    st, be = m.create_backend("share", smb_config(smbd))
    assert st == 201, be

    # 768 MiB fits only on B (A offers 512).
    st, v1 = place(m, be["id"], "big", 768)
    assert st == 201 and v1["host_id"] == hb["id"], v1
    # Attached on first use there.
    st, be2 = m.request("GET", "/v1/storage/backends/" + be["id"])
    assert sorted(x["host_id"] for x in be2["hosts"]) == sorted(["local", hb["id"]])
    # 512: B has 256 left, A 512.
    st, v2 = place(m, be["id"], "mid", 512)
    assert st == 201 and v2["host_id"] == "local", v2
    st, r = place(m, be["id"], "huge", 600)
    assert st == 422 and r["error"]["code"] == "no_host", r
    assert "MiB" in r["error"]["message"]
    st, r = place(m, be["id"], "pinned", 512, host_id=hb["id"])
    assert st == 422 and r["error"]["code"] == "host_unsuitable", r
    assert r["error"]["field"] == "host_id" and "256 MiB" in r["error"]["message"]

    st, _ = m.request("PATCH", "/v1/hosts/" + hb["id"], {"draining": True})
    assert st == 200
    st, r = place(m, be["id"], "small", 128, host_id=hb["id"])
    assert st == 422 and "draining" in r["error"]["message"], r
    st, _ = m.request("PATCH", "/v1/hosts/" + hb["id"], {"draining": False})
    st, v3 = place(m, be["id"], "small", 128, host_id=hb["id"])
    assert st == 201 and v3["host_id"] == hb["id"], v3
    for v in (v1, v2, v3):
        assert wait_state(m, v["id"])["state"] == "running"

    # The share goes away: the backend is unreachable on every host and
    # nothing is placed on it.
    smbd.down()
    try:
        def all_bad():
            st, x = m.request("GET", "/v1/storage/backends/" + be["id"])
            return x if all(h["status"] != "ok" for h in x["hosts"]) else None
        x = wait_for(all_bad, timeout=60)
        assert x["status"] != "ok"
        st, r = place(m, be["id"], "late", 64)
        assert st == 422 and r["error"]["code"] == "no_host", r
        assert "backend" in r["error"]["message"]
    finally:
        smbd.up()


def test_placement_follows_image_dirs(pair, smbd, fake_fc):
    """Each agent has its own image dir: a VM goes where its boot files
    are, an explicit host without them is refused naming the file, and a
    migration to a host without the VM's kernel is refused before the VM
    leaves its host."""
    m, a, b = pair
    kernel = b"\x7fELF fake kernel for the fake firecracker"
    put_image(a, "aonly.ext4")
    put_image(b, "bonly.ext4", 8 * MiB)
    put_image(b, "bonly.vmlinux", 0, kernel)
    st, info = b.tls_request("GET", "/v1/host", token=b.token)
    assert st == 200 and sorted(info["images"]) == sorted(
        ["vmlinux", "rootfs.ext4", "bonly.ext4", "bonly.vmlinux"]), info
    st, hb = enroll(m, b)
    assert st == 201, hb
    st, be = m.create_backend("share", smb_config(smbd))
    assert st == 201, be

    st, imgs = m.request("GET", "/v1/images")
    assert st == 200, imgs
    by = {i["name"]: i for i in imgs}
    assert sorted(by) == ["aonly.ext4", "bonly.ext4", "rootfs.ext4"], imgs
    assert by["rootfs.ext4"]["hosts"] == ["local", hb["id"]], imgs
    assert by["aonly.ext4"]["hosts"] == ["local"]
    assert by["aonly.ext4"]["size_bytes"] == 16 * MiB
    assert by["bonly.ext4"]["hosts"] == [hb["id"]]
    assert by["bonly.ext4"]["kernel"] == "bonly.vmlinux"

    # B has more memory free, but only A has aonly.ext4; only B bonly.ext4.
    st, va = create_vm(m, be["id"], "aonly.ext4", name="on-a")
    assert st == 201 and va["host_id"] == "local", va
    st, vb = create_vm(m, be["id"], "bonly.ext4", name="on-b", memory_mib=64)
    assert st == 201 and vb["host_id"] == hb["id"], vb
    st, r = create_vm(m, be["id"], "bonly.ext4", name="pinned", host_id="local")
    assert st == 422 and r["error"]["code"] == "host_unsuitable", r
    assert r["error"]["field"] == "host_id", r
    assert "no bonly.ext4 in its image dir" in r["error"]["message"], r
    st, r = create_vm(m, be["id"], "nowhere.ext4", name="nowhere")
    assert st == 422 and r["error"]["code"] == "image_not_found", r
    assert r["error"]["field"] == "image_id", r
    assert "nowhere.ext4" in r["error"]["message"], r
    vb = wait_state(m, vb["id"])
    assert vb["state"] == "running" and vb["kernel"] == "bonly.vmlinux", vb

    # A has no bonly.vmlinux: refused while the VM still runs on B.
    fake_fc.clear()
    st, r = m.request("POST", "/v1/vms/%s/migrate" % vb["id"], {"host_id": "local"})
    assert st == 422 and r["error"]["code"] == "host_unsuitable", r
    assert "no bonly.vmlinux in its image dir" in r["error"]["message"], r
    st, on_b = b.tls_request("GET", "/v1/vms/" + vb["id"], token=b.token)
    assert st == 200 and on_b["state"] == "running", on_b
    assert not [q for q in fake_fc.requests(vb["id"]) if q["path"] == "/actions"]
    st, _ = a.request("GET", "/v1/vms/" + vb["id"])
    assert st == 404
    st, vm = m.request("GET", "/v1/vms/" + vb["id"])
    assert vm["host_id"] == hb["id"] and vm["state"] == "running", vm

    # Once A has the kernel (its next heartbeat), the move goes through.
    put_image(a, "bonly.vmlinux", 0, kernel)
    st, r = m.request("POST", "/v1/vms/%s/migrate" % vb["id"], {"host_id": "local"})
    assert st == 200 and r["host_id"] == "local", r


def cred_inode(agent, bid):
    return os.stat(os.path.join(agent.cred_dir, bid + ".cred")).st_ino


def test_backend_on_two_hosts_rotation_and_removal(pair, smbd):
    m, a, b = pair
    st, hb = enroll(m, b)
    assert st == 201, hb
    st, be = m.create_backend("secure", smb_config(smbd, share="secure", user=True))
    assert st == 201, be
    st, vm = place(m, be["id"], "on-b", 128, host_id=hb["id"])
    assert st == 201, vm
    assert wait_state(m, vm["id"])["state"] == "running"
    ino_a, ino_b = cred_inode(a, be["id"]), cred_inode(b, be["id"])

    # A wrong password is refused on the first host; nothing changes.
    st, r = m.request("PATCH", "/v1/storage/backends/" + be["id"],
                      {"rotate_password": "not-the-password"})
    assert st == 422, r
    assert (cred_inode(a, be["id"]), cred_inode(b, be["id"])) == (ino_a, ino_b)
    st, r = m.request("PATCH", "/v1/storage/backends/" + be["id"],
                      {"rotate_password": smbd.password})
    assert st == 200, r
    assert cred_inode(a, be["id"]) != ino_a and cred_inode(b, be["id"]) != ino_b
    assert smbd.password.encode() not in m.db_bytes()

    # B paused: it is unreachable; a rotation reaches it when it is back.
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: m.request("GET", "/v1/hosts/" + hb["id"])[1]["status"]
                 == "unreachable", timeout=60)
        ino_b = cred_inode(b, be["id"])
        st, r = m.request("PATCH", "/v1/storage/backends/" + be["id"],
                          {"rotate_password": smbd.password})
        assert st == 200, r
        assert cred_inode(b, be["id"]) == ino_b
        # The VM on B cannot be forgotten there while B is paused.
        st, r = m.request("DELETE", "/v1/vms/" + vm["id"])
        assert st == 503 and r["error"]["code"] == "agent_unavailable", r
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    wait_for(lambda: cred_inode(b, be["id"]) != ino_b, timeout=60)
    st, _ = m.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204
    st, _ = m.request("DELETE", "/v1/storage/backends/" + be["id"])
    assert st == 204
    for ag in (a, b):
        assert not os.path.exists(os.path.join(ag.cred_dir, be["id"] + ".cred"))


def test_removal_blocked_while_host_unreachable(pair, smbd):
    m, a, b = pair
    st, hb = enroll(m, b)
    assert st == 201, hb
    st, be = m.create_backend("share", smb_config(smbd))
    assert st == 201, be
    st, vm = place(m, be["id"], "on-b", 128, host_id=hb["id"])
    assert st == 201 and wait_state(m, vm["id"])["state"] == "running"
    st, r = m.request("DELETE", "/v1/hosts/" + hb["id"])
    assert st == 409 and r["error"]["code"] == "host_in_use", r
    assert vm["id"] in r["error"]["message"]
    st, _ = m.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        st, r = m.request("DELETE", "/v1/storage/backends/" + be["id"])
        assert st == 409 and r["error"]["code"] == "host_unreachable", r
        assert "host-b" in r["error"]["message"]
        st, x = m.request("GET", "/v1/storage/backends/" + be["id"])
        assert st == 200 and len(x["hosts"]) == 2
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    st, _ = m.request("DELETE", "/v1/storage/backends/" + be["id"])
    assert st == 204
    st, _ = m.request("DELETE", "/v1/hosts/" + hb["id"])
    assert st == 204


def test_migrate_between_agents(pair, smbd, fake_fc):
    m, a, b = pair
    st, hb = enroll(m, b)
    assert st == 201, hb
    st, be = m.create_backend("share", smb_config(smbd))
    assert st == 201, be
    st, vm = place(m, be["id"], "mover", 256, host_id="local")
    assert st == 201, vm
    vm = wait_state(m, vm["id"])
    assert vm["state"] == "running" and vm["host_id"] == "local", vm
    path = vm["volume"]["path"]
    backing = os.path.join(smbd.shares["guest"], os.path.basename(path))
    ino = os.stat(backing).st_ino

    fake_fc.clear()
    st, r = m.request("POST", "/v1/vms/%s/migrate" % vm["id"], {"host_id": hb["id"]})
    assert st == 200, r
    assert r["host_id"] == hb["id"] and r["state"] == "running", r
    assert r["volume"]["path"] == path and os.stat(backing).st_ino == ino
    st, _ = a.request("GET", "/v1/vms/" + vm["id"])
    assert st == 404
    st, on_b = b.tls_request("GET", "/v1/vms/" + vm["id"], token=b.token)
    assert st == 200 and on_b["state"] == "running", on_b
    assert [q["body"]["action_type"] for q in fake_fc.requests(vm["id"])
            if q["path"] == "/actions"][-1] == "InstanceStart"

    # Same host again, and a stopped VM moves back without starting.
    st, r = m.request("POST", "/v1/vms/%s/migrate" % vm["id"], {"host_id": hb["id"]})
    assert st == 422 and r["error"]["code"] == "host_unsuitable", r
    st, _ = m.request("POST", "/v1/vms/%s/stop" % vm["id"])
    assert st == 200
    st, r = m.request("POST", "/v1/vms/%s/migrate" % vm["id"], {"host_id": "local"})
    assert st == 200 and r["host_id"] == "local" and r["state"] == "stopped", r
    st, on_a = a.request("GET", "/v1/vms/" + vm["id"])
    assert st == 200 and on_a["state"] != "running", on_a
    st, _ = b.tls_request("GET", "/v1/vms/" + vm["id"], token=b.token)
    assert st == 404

    # A VM on localfile cannot move: its disk is a directory of one host.
    st, lv = place(m, "localfile-default", "stay", 64)
    assert st == 201, lv
    wait_state(m, lv["id"])
    st, r = m.request("POST", "/v1/vms/%s/migrate" % lv["id"], {"host_id": hb["id"]})
    assert st == 409 and r["error"]["code"] == "backend_not_shared", r


def test_migration_settled_after_manager_crash(gates, pair, smbd):
    """The manager dies after the VM left A and before B has it: the next
    manager puts it on B, running, and A never runs it again."""
    m, a, b = pair
    st, hb = enroll(m, b)
    assert st == 201, hb
    st, be = m.create_backend("share", smb_config(smbd))
    assert st == 201, be
    st, vm = place(m, be["id"], "crashy", 256, host_id="local")
    assert st == 201 and wait_state(m, vm["id"])["state"] == "running", vm

    gates.arm("vm-migrate-left")
    t = threading.Thread(target=lambda: _quiet(m.request, "POST",
                         "/v1/vms/%s/migrate" % vm["id"], {"host_id": hb["id"]}))
    t.start()
    gates.wait_reached("vm-migrate-left")
    st, _ = a.request("GET", "/v1/vms/" + vm["id"])
    assert st == 404
    st, _ = b.tls_request("GET", "/v1/vms/" + vm["id"], token=b.token)
    assert st == 404
    m.proc.kill()
    m.proc.wait()
    t.join(timeout=60)
    gates.release("vm-migrate-left")
    m.start()
    m.token = None

    def on_b():
        st, x = m.request("GET", "/v1/vms/" + vm["id"])
        return x if st == 200 and x["host_id"] == hb["id"] else None
    x = wait_for(on_b, timeout=60)
    assert x["state"] == "running", x
    st, on = b.tls_request("GET", "/v1/vms/" + vm["id"], token=b.token)
    assert st == 200 and on["state"] == "running", on
    st, _ = a.request("GET", "/v1/vms/" + vm["id"])
    assert st == 404


def _quiet(f, *args):
    try:
        f(*args)
    except OSError:
        pass
