"""Issue 12, HA: a VM with ha=true whose host stays unreachable for longer
than its lease period is started on another host, once the lease on its
volume (a real lease file on the SMB share) has expired; a VM with ha=false
stays where it is; the host that comes back does not run the moved VM
again: the manager tells its agent to forget it.

Host A is the manager's built-in "local" agent (unix socket), host B an
agent enrolled over TLS; both run the fake Firecracker and mount the same
share. A is made unreachable by SIGSTOP, which also stops the renewal of
its leases, so they expire on the share."""

import os
import signal
import time

import pytest

from fixtures_agent import Agent
from fixtures_manager import Manager, smb_config, wait_for
from fixtures_vm import kill_vmms, put_image

LEASE = 3


def vm_agent(fake_fc, **kw):
    a = Agent(extra_args=["--firecracker-path", fake_fc.path, "--lease-seconds",
                          str(LEASE), "--report-memory-mib", "8192"], **kw).start()
    put_image(a, "vmlinux", 0, b"\x7fELF fake kernel for the fake firecracker")
    put_image(a)
    return a


def agent_vm_ids(agent):
    st, vms = agent.request("GET", "/v1/vms")
    assert st == 200, vms
    return {v["id"]: v for v in vms}


def vm(m, vid):
    st, v = m.request("GET", "/v1/vms/" + vid)
    assert st == 200, v
    return v


def events(m, **q):
    st, ev = m.request("GET", "/v1/events?" + "&".join("%s=%s" % kv for kv in q.items()))
    assert st == 200, ev
    return ev


@pytest.mark.parametrize("engine", ["postgres"])
def test_ha_restarts_on_another_host_after_the_lease(engine, pg_cluster, fake_fc, smbd):
    a = vm_agent(fake_fc)
    b = vm_agent(fake_fc, tcp=True)
    m = None
    stopped = False
    try:
        m = Manager(a, engine="postgres", pg=pg_cluster,
                    extra_args=["--ha-interval", "1", "--reconcile-interval", "1"]).start()
        st, bk = m.create_backend("shared", smb_config(smbd))
        assert st == 201, bk
        st, hb = m.request("POST", "/v1/hosts", {
            "name": "host-b", "agent_url": "https://127.0.0.1:%d" % b.tcp_port,
            "token": b.token, "fingerprint": b.tls_fingerprint})
        assert st == 201, hb
        ids = {}
        for name, ha in (("ha-on", True), ("ha-off", False)):
            st, v = m.request("POST", "/v1/vms", {
                "name": name, "vcpus": 1, "memory_mib": 128, "image_id": "rootfs.ext4",
                "storage_backend_id": bk["id"], "host_id": "local", "ha": ha})
            assert st == 201 and v["ha"] is ha, v
            ids[name] = v["id"]
        for vid in ids.values():
            assert wait_for(lambda: vm(m, vid)["state"] == "running", timeout=60)
            assert vm(m, vid)["host_id"] == "local"
        assert set(ids.values()) <= set(agent_vm_ids(a))

        os.kill(a.proc.pid, signal.SIGSTOP)
        stopped = True
        t0 = time.monotonic()
        moved = wait_for(lambda: vm(m, ids["ha-on"])["host_id"] == hb["id"], timeout=90,
                         interval=0.25)
        took = time.monotonic() - t0
        assert moved, m.log()[-4000:]
        assert took >= LEASE, took  # not before the lease could have expired
        v = vm(m, ids["ha-on"])
        assert v["state"] == "running" and v["host_name"] == "host-b", v
        assert agent_vm_ids(b)[ids["ha-on"]]["state"] == "running"
        ev = events(m, object_id=ids["ha-on"], action="vm.ha_restarted")
        assert len(ev) == 1 and ev[0]["host_id"] == hb["id"], ev
        assert "local" in ev[0]["cause"] and ev[0]["actor"] == "ha", ev
        off = vm(m, ids["ha-off"])
        assert off["host_id"] == "local" and off["host_status"] == "unreachable", off
        assert ids["ha-off"] not in agent_vm_ids(b)
        assert events(m, object_id="local", action="host.unreachable")

        # A comes back: it is told to forget the moved VM and never runs it.
        os.kill(a.proc.pid, signal.SIGCONT)
        stopped = False
        assert wait_for(lambda: ids["ha-on"] not in agent_vm_ids(a), timeout=30), \
            m.log()[-4000:]
        assert events(m, object_id=ids["ha-on"], action="vm.forgotten")
        assert wait_for(lambda: events(m, object_id="local", action="host.recovered"),
                        timeout=30)
        time.sleep(3)  # a few more HA and reconciler rounds
        assert ids["ha-on"] not in agent_vm_ids(a)
        v = vm(m, ids["ha-on"])
        assert v["host_id"] == hb["id"] and v["state"] == "running", v
        off = vm(m, ids["ha-off"])
        assert off["host_id"] == "local" and off["host_status"] == "ok", off
        assert len(events(m, object_id=ids["ha-on"], action="vm.ha_restarted")) == 1
    finally:
        if stopped:
            os.kill(a.proc.pid, signal.SIGCONT)
        if m:
            m.cleanup()
        for ag in (b, a):
            kill_vmms(ag)
            ag.cleanup()
