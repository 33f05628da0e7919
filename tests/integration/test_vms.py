"""VM lifecycle through the manager (DESIGN.md §5) with the fake Firecracker
on a real SMB backend: provisioning as a tracked operation, the requests the
VMM received, rootfs on the share, delete, failure with the SMB server
stopped during provisioning, and an agent restart under running VMs."""

import os
import re
import time

import pytest

from fixtures_agent import Agent
from fixtures_manager import smb_config, wait_for
from fixtures_vm import (create_vm, kill_vmms, proc_running, put_image, run_vm_agent,
                         wait_state)
from smbd import Smbd

MiB = 1 << 20


@pytest.fixture
def agent(fake_fc):
    """The manager fixtures' agent, with the fake Firecracker installed."""
    yield from run_vm_agent(fake_fc)


def backing_file(shares_dir, vm):
    return os.path.join(shares_dir, os.path.basename(vm["volume"]["path"]))


def test_vm_lifecycle_on_smb(manager, agent, fake_fc, smbd):
    put_image(agent)
    st, b = manager.create_backend("vmstore", smb_config(smbd))
    assert st == 201, b
    st, imgs = manager.request("GET", "/v1/images")
    assert st == 200 and imgs == [{"id": "rootfs.ext4", "name": "rootfs.ext4",
                                   "size_bytes": 16 * MiB, "kernel": "vmlinux",
                                   "initrd": None, "hosts": ["local"]}], imgs
    st, vm = manager.request("POST", "/v1/vms", {
        "name": "web-1", "vcpus": 2, "memory_mib": 256, "image_id": "rootfs.ext4",
        "storage_backend_id": b["id"]})
    assert st == 201, vm
    assert vm["state"] in ("provisioning", "running") and vm["host_id"] == "local"
    vm = wait_state(manager, vm["id"])
    assert vm["state"] == "running", vm
    assert vm["volume"]["state"] == "ready"
    path = vm["volume"]["path"]
    backing = backing_file(smbd.shares["guest"], vm)
    with open(backing, "rb") as f:
        assert f.read(7) == b"rootfs!"
    assert os.path.getsize(backing) == 16 * MiB
    reqs = fake_fc.requests(vm["id"])
    assert [(r["method"], r["path"], r["status"]) for r in reqs] == [
        ("PUT", "/machine-config", 204), ("PUT", "/boot-source", 204),
        ("PUT", "/drives/rootfs", 204), ("PUT", "/actions", 204)]
    assert reqs[0]["body"]["vcpu_count"] == 2 and reqs[0]["body"]["mem_size_mib"] == 256
    assert reqs[2]["body"]["path_on_host"] == path and path.startswith(agent.mount_base)
    assert reqs[2]["body"]["is_root_device"] is True

    st, hosts = manager.request("GET", "/v1/hosts")
    assert st == 200 and hosts[0]["id"] == "local" and "smb" in hosts[0]["backend_kinds"]
    assert "firecracker" in hosts[0]["hypervisors"] and hosts[0]["status"] == "ok"

    fake_fc.clear()
    for action, state in (("stop", "stopped"), ("start", "running"),
                          ("restart", "running")):
        st, r = manager.request("POST", "/v1/vms/%s/%s" % (vm["id"], action))
        assert st == 200 and r["state"] == state, (action, r)
    actions = [q["body"]["action_type"] if q["path"] == "/actions" else q["path"]
               for q in fake_fc.requests(vm["id"])
               if q["path"] in ("/actions", "SIGTERM")]
    # Stop is a power-off (the guest is not asked); restart asks first.
    assert actions == ["SIGTERM", "InstanceStart", "SendCtrlAltDel",
                       "InstanceStart"], actions
    assert all(q["body"]["path_on_host"] == path for q in fake_fc.requests(vm["id"])
               if q["path"] == "/drives/rootfs")

    st, r = manager.request("DELETE", "/v1/storage/backends/" + b["id"])
    assert st == 409, r
    st, _ = manager.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204
    assert not os.path.exists(backing)
    st, _ = manager.request("GET", "/v1/vms/" + vm["id"])
    assert st == 404
    st, vols = manager.request("GET", "/v1/volumes")
    assert st == 200 and vols == []
    st, r = manager.request("DELETE", "/v1/storage/backends/" + b["id"])
    assert st == 204, r


def test_vm_lifecycle_on_localfile(manager, agent, fake_fc):
    """The default backend, localfile, keeps the rootfs in the agent's local
    root; a second localfile backend in a directory of its own works the
    same way and cannot point outside that root."""
    put_image(agent)
    local = os.path.join(agent.mount_root, "local")
    st, vm = manager.request("POST", "/v1/vms", {
        "name": "local-1", "vcpus": 1, "memory_mib": 128, "image_id": "rootfs.ext4"})
    assert st == 201, vm
    assert vm["storage_backend_id"] == "localfile-default"
    vm = wait_state(manager, vm["id"])
    assert vm["state"] == "running", vm
    path = vm["volume"]["path"]
    assert path == os.path.join(local, "local-%s.raw" % vm["volume"]["id"])
    with open(path, "rb") as f:
        assert f.read(7) == b"rootfs!"
    drive = [q for q in fake_fc.requests(vm["id"]) if q["path"] == "/drives/rootfs"]
    assert drive[0]["body"]["path_on_host"] == path
    st, vols = manager.request("GET", "/v1/volumes")
    assert st == 200 and vols[0]["allocated_bytes"] == os.stat(path).st_blocks * 512
    for action, state in (("stop", "stopped"), ("start", "running"),
                          ("restart", "running")):
        st, r = manager.request("POST", "/v1/vms/%s/%s" % (vm["id"], action))
        assert st == 200 and r["state"] == state, (action, r)
    assert all(q["body"]["path_on_host"] == path for q in fake_fc.requests(vm["id"])
               if q["path"] == "/drives/rootfs")
    st, _ = manager.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204 and not os.path.exists(path)
    st, vols = manager.request("GET", "/v1/volumes")
    assert st == 200 and vols == []

    for bad in ("/etc", agent.mount_root, local + "/../x", "rel/dir"):
        st, r = manager.create_backend("bad", {"path": bad}, kind="localfile")
        assert st == 400 and r["error"]["field"] == "config.path", (bad, r)
    st, r = manager.create_backend("bad", {"path": local, "server": "x"},
                                   kind="localfile")
    assert st == 400 and r["error"]["field"] == "config.server", r
    assert "bad" not in manager.backends()
    fast = os.path.join(local, "fast")
    st, b = manager.create_backend("fast", {"path": fast}, kind="localfile")
    assert st == 201 and b["config"] == {"path": fast}, b
    assert b["capacity"]["total_bytes"] > 0 or b["status"] != "ok"
    st, vm = manager.request("POST", "/v1/vms", {
        "name": "local-2", "vcpus": 1, "memory_mib": 128, "image_id": "rootfs.ext4",
        "storage_backend_id": b["id"]})
    assert st == 201, vm
    vm = wait_state(manager, vm["id"])
    assert vm["state"] == "running", vm
    assert os.path.dirname(vm["volume"]["path"]) == fast
    st, r = manager.request("DELETE", "/v1/storage/backends/" + b["id"])
    assert st == 409 and r["error"]["code"] == "backend_in_use", r
    st, _ = manager.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204
    st, _ = manager.request("DELETE", "/v1/storage/backends/" + b["id"])
    assert st == 204
    st, lst = agent.request("GET", "/v1/storage/localfile/backends")
    assert b["id"] not in [x["backend_id"] for x in lst]
    assert os.path.isdir(fast)  # files and directories stay


def test_vm_refusals(manager_factory, agent, smbd):
    put_image(agent)
    # A host without any hypervisor cannot take the VM.
    bare = Agent(extra_args=["--firecracker-path", "/nonexistent/firecracker",
                             "--qemu-path", "/nonexistent/qemu"]).start()
    try:
        st, r = manager_factory(agent_obj=bare).request("POST", "/v1/vms", {
            "name": "x", "vcpus": 1, "memory_mib": 128, "image_id": "rootfs.ext4"})
        assert st == 422 and r["error"]["code"] == "no_host", r
    finally:
        bare.cleanup()
    manager = manager_factory()
    st, b = manager.create_backend("vmstore", smb_config(smbd))
    assert st == 201
    body = {"name": "x", "vcpus": 1, "memory_mib": 128, "image_id": "nope.ext4",
            "storage_backend_id": b["id"]}
    st, r = manager.request("POST", "/v1/vms", body)
    assert st == 422 and r["error"]["code"] == "image_not_found", r
    body["image_id"] = "rootfs.ext4"
    body["vcpus"] = 0
    st, r = manager.request("POST", "/v1/vms", body)
    assert st == 400 and r["error"]["field"] == "vcpus", r
    st, r = manager.request("POST", "/v1/vms", dict(body, vcpus=1, extra=1))
    assert st == 400 and r["error"]["field"] == "extra", r
    st, vms = manager.request("GET", "/v1/vms")
    assert st == 200 and vms == []


def test_smb_down_during_provisioning(gates, manager, agent, fake_fc):
    """The server goes while the clone is in flight: the clone is held on
    purpose (debug gate "clone": its data is in the temp file on the share,
    nothing final yet), the server stops, the clone goes on and fails."""
    srv = Smbd().start()
    try:
        put_image(agent, "big.ext4", 64 * MiB, data=None)
        # A short soft grace: the flush after the outage fails in 10 s, not 90.
        st, b = manager.create_backend("flaky", smb_config(
            srv, mount_options="port=%d,soft,timeout=10" % srv.port))
        assert st == 201, b
        gates.arm("clone")
        st, vm = create_vm(manager, b["id"], "big.ext4", name="db-1")
        assert st == 201, vm
        gates.wait_reached("clone")
        srv._stop_proc()
        share = srv.shares["guest"]
        st, r = manager.request("GET", "/v1/vms/" + vm["id"])
        assert st == 200 and r["state"] == "provisioning", r
        gates.release("clone")
        vm = wait_state(manager, vm["id"], timeout=120)
        assert vm["state"] == "error", vm
        assert "provisioning the rootfs" in vm["error"] and "flaky" in vm["error"], vm
        assert vm["volume"] is None
        st, vols = manager.request("GET", "/v1/volumes")
        assert st == 200 and vols == []
        assert fake_fc.requests(vm["id"]) == []

        srv._write_conf()
        srv._spawn_and_wait()
        st, r = manager.request("POST", "/v1/vms/%s/start" % vm["id"])
        assert st == 200 and r["state"] in ("provisioning", "running"), r
        vm = wait_state(manager, vm["id"], timeout=120)
        assert vm["state"] == "running", vm
        assert os.path.getsize(backing_file(share, vm)) == 64 * MiB
        st, _ = manager.request("DELETE", "/v1/vms/" + vm["id"])
        assert st == 204
    finally:
        gates.release("clone")
        kill_vmms(agent)
        srv.stop()


def test_agent_restart_keeps_vms(manager, agent, fake_fc, smbd):
    put_image(agent)
    st, b = manager.create_backend("vmstore", smb_config(smbd))
    assert st == 201, b
    ids = []
    for n in ("a", "b"):
        st, vm = create_vm(manager, b["id"], "rootfs.ext4", name="vm-" + n)
        assert st == 201, vm
        ids.append(vm["id"])
    for i in ids:
        vm = wait_state(manager, i)
        assert vm["state"] == "running", vm
    st, avms = agent.request("GET", "/v1/vms")
    pids = {v["id"]: v["pid"] for v in avms}
    agent.restart()
    for i in ids:
        assert proc_running(pids[i])
        st, vm = manager.request("GET", "/v1/vms/" + i)
        assert st == 200 and vm["state"] == "running", vm
    st, r = manager.request("POST", "/v1/vms/%s/restart" % ids[0])
    assert st == 200 and r["state"] == "running", r
    st, r = manager.request("POST", "/v1/vms/%s/stop" % ids[1])
    assert st == 200 and r["state"] == "stopped", r
    assert not proc_running(pids[ids[1]])
    for i in ids:
        st, _ = manager.request("DELETE", "/v1/vms/" + i)
        assert st == 204


def test_cli_vm_commands(manager, agent, fake_fc, smbd):
    from test_cli import Cli
    put_image(agent)
    cli = Cli(manager)
    manager.login()
    cli.env["NQRUST_TOKEN"] = manager.token
    st, b = manager.create_backend("clistore", smb_config(smbd))
    assert st == 201, b
    imgs = cli.json("image", "list")
    assert [i["id"] for i in imgs] == ["rootfs.ext4"]
    vm = cli.json("vm", "create", "--name", "cli-1", "--image", "rootfs.ext4",
                  "--vcpus", "2", "--memory", "192", "--backend", "clistore")
    assert vm["vcpus"] == 2 and vm["memory_mib"] == 192
    vm = wait_state(manager, vm["id"])
    assert vm["state"] == "running", vm
    rc, out, err = cli.run("vm", "list")
    assert rc == 0 and "cli-1" in out and "running" in out, (out, err)
    assert cli.json("vm", "stop", "cli-1")["state"] == "stopped"
    assert cli.json("vm", "start", "cli-1")["state"] == "running"
    assert cli.json("vm", "restart", vm["id"])["state"] == "running"
    rc, out, err = cli.run("vm", "delete", "cli-1")
    assert rc == 0 and "VM deleted." in out, err
    assert cli.json("vm", "list") == []
    rc, out, err = cli.run("vm", "start", "cli-1")
    assert rc == 1 and "no VM" in err


def test_provisioning_is_not_cut_off_by_the_call_timeout(gates, manager_factory, agent,
                                                         fake_fc, smbd):
    """A clone that takes longer than --call-timeout-ms (mounts, probes) still
    completes: provisioning has its own --provision-timeout. The clone is
    held on purpose (debug gate "clone") for twice the call timeout."""
    m = manager_factory(extra_args=["--call-timeout-ms", "1000"])
    put_image(agent, "large.ext4", 16 * MiB, data=None)
    st, b = m.create_backend("slowclone", smb_config(smbd))
    assert st == 201, b
    gates.arm("clone")
    st, vm = create_vm(m, b["id"], "large.ext4", name="big-1")
    assert st == 201, vm
    gates.wait_reached("clone")
    held = time.monotonic()
    try:
        # Past the call timeout the manager still waits for the clone.
        while time.monotonic() - held < 2.0:
            st, r = m.request("GET", "/v1/vms/" + vm["id"])
            assert st == 200 and r["state"] == "provisioning", r
            time.sleep(0.2)
    finally:
        gates.release("clone")
    vm = wait_state(m, vm["id"], timeout=120)
    assert vm["state"] == "running", vm
    took = [int(x) for x in re.findall(
        r"method=POST path=/v1/storage/smb/volumes status=201 ms=(\d+)", agent.log())]
    assert took and max(took) > 1000, took
    assert m.request("DELETE", "/v1/vms/" + vm["id"])[0] == 204


def test_host_heartbeats_without_api_traffic(manager_factory, agent):
    """The manager heartbeats its host every refresh interval on its own:
    with no API call meanwhile, the agent sees GET /v1/host twice more
    (polled in the agent's log, with a deadline far above 2 intervals)."""
    manager_factory(extra_args=["--refresh-interval", "1"])

    def beats():
        return agent.log().count("path=/v1/host status=200")
    before = beats()
    assert wait_for(lambda: beats() - before >= 2, timeout=30), beats() - before
