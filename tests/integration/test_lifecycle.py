"""VM lifecycle (issue 14): graceful shutdown with a deadline (the guest is
asked first: SendCtrlAltDel reaches the fake Firecracker before any kill;
a guest that ignores it is powered off at the deadline), the manager's
"stopping" state, PATCH of vCPUs and memory of a stopped VM, and the
memory check against the host's free memory (agent --report-memory-mib)."""

import threading

import pytest

from fixtures_agent import Agent
from fixtures_manager import wait_for
from fixtures_vm import kill_vmms, put_image

HOST_MIB = 1024


@pytest.fixture
def mem_agent(fake_fc):
    """The fake Firecracker on an agent that says it has HOST_MIB MiB."""
    a = Agent(extra_args=["--firecracker-path", fake_fc.path,
                          "--report-memory-mib", str(HOST_MIB)]).start()
    put_image(a, "vmlinux", 0, b"\x7fELF fake kernel for the fake firecracker")
    put_image(a, "rootfs.ext4", 4 << 20)
    yield a
    kill_vmms(a)
    a.cleanup()


def running_vm(m, name, memory_mib=128):
    st, vm = m.request("POST", "/v1/vms", {"name": name, "vcpus": 1,
                                           "memory_mib": memory_mib,
                                           "image_id": "rootfs.ext4"})
    assert st == 201, vm
    assert wait_for(lambda: m.request("GET", "/v1/vms/" + vm["id"])[1]["state"]
                    == "running", timeout=60), vm
    return vm


def fc_log(fake_fc, vm_id):
    """(method, path or action) of what the fake VMM saw, in order."""
    return [(q["method"], (q["body"] or {}).get("action_type", q["path"]))
            for q in fake_fc.requests(vm_id)]


def events(m, vm_id, action):
    st, evs = m.request("GET", "/v1/events?object_id=%s&action=%s" % (vm_id, action))
    assert st == 200, evs
    return evs


@pytest.mark.parametrize("engine", ["sqlite"])
def test_shutdown_graceful_then_forced(manager_factory, mem_agent, fake_fc):
    m = manager_factory(agent_obj=mem_agent)
    vm = running_vm(m, "calm")
    fake_fc.clear()
    st, r = m.request("POST", "/v1/vms/%s/shutdown" % vm["id"], {"timeout_seconds": 20})
    assert st == 200 and r["state"] == "stopped", r
    # The guest was asked and powered off by itself: no signal was needed.
    assert fc_log(fake_fc, vm["id"]) == [("PUT", "SendCtrlAltDel")]
    assert r["last_exit"]["shutdown"] == "graceful", r["last_exit"]
    ev = events(m, vm["id"], "vm.shutdown")
    assert ev and ev[0]["outcome"] == "ok" and "graceful" in ev[0]["cause"], ev

    # A guest that ignores CtrlAltDel: "stopping" while the agent waits,
    # then powered off at the deadline (SIGTERM after SendCtrlAltDel).
    st, r = m.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200 and r["state"] == "running", r
    fake_fc.clear()
    fake_fc.ignore_ctrl_alt_del(vm["id"])
    done = {}
    t = threading.Thread(target=lambda: done.update(r=m.request(
        "POST", "/v1/vms/%s/shutdown" % vm["id"], {"timeout_seconds": 3})))
    t.start()
    try:
        seen = wait_for(lambda: m.request("GET", "/v1/vms/" + vm["id"])[1]["state"]
                        == "stopping" or "r" in done, timeout=30)
        assert seen and "r" not in done, "never saw state stopping"
        # Meanwhile a second operation on the VM is refused, not queued.
        st, busy = m.request("POST", "/v1/vms/%s/start" % vm["id"])
        assert st == 409, busy
    finally:
        t.join(60)
    st, r = done["r"]
    assert st == 200 and r["state"] == "stopped", r
    assert fc_log(fake_fc, vm["id"]) == [("PUT", "SendCtrlAltDel"),
                                         ("SIGNAL", "SIGTERM")]
    assert r["last_exit"]["shutdown"] == "forced", r["last_exit"]
    assert "powered off" in r["last_exit"]["reason"]
    assert "forced" in events(m, vm["id"], "vm.shutdown")[0]["cause"]

    # Stopped already: nothing to do. Bounds are checked.
    st, r = m.request("POST", "/v1/vms/%s/shutdown" % vm["id"])
    assert st == 200 and r["state"] == "stopped", r
    for bad in (0, 3601, "5"):
        st, e = m.request("POST", "/v1/vms/%s/shutdown" % vm["id"],
                          {"timeout_seconds": bad})
        assert st == 400 and e["error"]["field"] == "timeout_seconds", e
    st, e = m.request("POST", "/v1/vms/no-such-vm/shutdown")
    assert st == 404, e


@pytest.mark.parametrize("engine", ["sqlite"])
def test_resize_and_memory_check(manager_factory, mem_agent, fake_fc):
    m = manager_factory(agent_obj=mem_agent)
    # More than the host has: refused at create, naming the field and
    # the host's figure; nothing was created.
    st, e = m.request("POST", "/v1/vms", {"name": "huge", "vcpus": 1,
                                          "memory_mib": 200000,
                                          "image_id": "rootfs.ext4"})
    assert st == 422 and e["error"]["code"] == "insufficient_memory", e
    assert e["error"]["field"] == "memory_mib", e
    assert "%d MiB" % HOST_MIB in e["error"]["message"], e
    st, vms = m.request("GET", "/v1/vms")
    assert vms == []
    st, hosts = m.request("GET", "/v1/hosts")
    assert hosts[0]["memory_free_mib"] == HOST_MIB, hosts

    a = running_vm(m, "a", 512)
    b = running_vm(m, "b", 256)
    # Only while stopped.
    st, e = m.request("PATCH", "/v1/vms/" + b["id"], {"vcpus": 2})
    assert st == 409 and e["error"]["code"] == "invalid_state", e
    st, r = m.request("POST", "/v1/vms/%s/stop" % b["id"])
    assert st == 200 and r["state"] == "stopped", r
    for body, field in (({"vcpus": 0}, "vcpus"), ({"vcpus": 33}, "vcpus"),
                        ({"memory_mib": 32}, "memory_mib"), ({"memory_mib": "1"},
                                                              "memory_mib"),
                        ({"cpus": 2}, "cpus")):
        st, e = m.request("PATCH", "/v1/vms/" + b["id"], body)
        assert st == 400 and e["error"]["field"] == field, (body, e)
    # 512 MiB of 1024 are taken by a: 600 does not fit, 2 vCPUs and 384 do.
    st, e = m.request("PATCH", "/v1/vms/" + b["id"], {"memory_mib": 600})
    assert st == 422 and e["error"]["field"] == "memory_mib", e
    assert "512 MiB" in e["error"]["message"], e
    st, r = m.request("PATCH", "/v1/vms/" + b["id"], {"vcpus": 2, "memory_mib": 384})
    assert st == 200 and (r["vcpus"], r["memory_mib"]) == (2, 384), r
    fake_fc.clear()
    st, r = m.request("POST", "/v1/vms/%s/start" % b["id"])
    assert st == 200 and r["state"] == "running", r
    # The VMM got the new size.
    cfg = [q["body"] for q in fake_fc.requests(b["id"]) if q["path"] == "/machine-config"]
    assert cfg and cfg[-1]["vcpu_count"] == 2 and cfg[-1]["mem_size_mib"] == 384, cfg

    # Start checks too: a stopped, c takes its place (b 384 + c 512 of
    # 1024): a no longer fits, and its start is refused naming the field.
    st, r = m.request("POST", "/v1/vms/%s/stop" % a["id"])
    assert st == 200
    running_vm(m, "c", 512)
    st, e = m.request("POST", "/v1/vms/%s/start" % a["id"])
    assert st == 422 and e["error"]["field"] == "memory_mib", e
    assert "128 MiB" in e["error"]["message"], e
    st, r = m.request("GET", "/v1/vms/" + a["id"])
    assert r["state"] == "stopped", r


@pytest.mark.parametrize("engine", ["sqlite"])
def test_cli_lifecycle_names_and_json_errors(manager_factory, mem_agent, fake_fc):
    from test_cli import Cli
    from fixtures_manager import ADMIN_PASSWORD
    import json

    m = manager_factory(agent_obj=mem_agent)
    cli = Cli(m)
    rc, out, err = cli.run("login", "--username", "admin", "--password-stdin",
                           stdin=ADMIN_PASSWORD + "\n")
    assert rc == 0, err
    running_vm(m, "web")
    # Names work everywhere a VM is named; stop without a terminal needs no
    # question (stdin is not a tty here).
    fake_fc.clear()
    vm = cli.json("vm", "shutdown", "web", "--timeout", "10")
    assert vm["state"] == "stopped" and vm["name"] == "web", vm
    assert fc_log(fake_fc, vm["id"]) == [("PUT", "SendCtrlAltDel")]
    vm = cli.json("vm", "set", "web", "--vcpus", "2", "--memory", "192")
    assert (vm["vcpus"], vm["memory_mib"]) == (2, 192), vm
    assert cli.json("vm", "start", "web")["state"] == "running"
    assert cli.json("vm", "stop", "web", "--yes")["state"] == "stopped"

    # Every error with --json is the API's error object, exit status not 0.
    cases = [
        (("vm", "get", "no-such-vm"), 1, "not_found"),
        (("vm", "set", "web", "--memory", "4096"), 1, "insufficient_memory"),
        (("vm", "set", "web"), 2, "usage"),
        (("vm", "bogus", "web"), 2, "usage"),
        (("vm", "shutdown", "web", "--timeout", "x"), 2, "usage"),
        (("nonsense",), 2, "usage"),
    ]
    for args, want_rc, code in cases:
        rc, out, err = cli.run("--json", *args)
        assert rc == want_rc, (args, rc, out, err)
        for stream in (out, err):
            e = json.loads(stream)["error"]
            assert e["code"] == code and e["message"], (args, e)
    rc, out, err = cli.run("--json", "vm", "set", "web", "--memory", "4096")
    assert json.loads(out)["error"]["field"] == "memory_mib"
    # Without --json: one human line on stderr.
    rc, out, err = cli.run("vm", "get", "no-such-vm")
    assert rc == 1 and out == "" and err.startswith("nqrust: no VM"), err
    cli.env["NQRUST_URL"] = "http://127.0.0.1:1"
    rc, out, err = cli.run("--json", "vm", "list")
    assert rc == 1 and json.loads(out)["error"]["code"] == "manager_unreachable"
