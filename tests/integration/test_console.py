"""The VM console and detail (issue 14): a real QEMU guest (the echo
variant of the demo image, console_guest.py) whose serial output reaches
GET /v1/vms/{id}/console and the WebSocket, whose serial port gets what an
administrator types (and not what a viewer types), and whose exits are
told in words. One boot for the whole module; the memory failure needs
none (QEMU refuses at once)."""

import base64
import os
import pty
import select
import socket
import struct
import subprocess
import time

import pytest

from console_guest import QEMU, WsClient, build_demo, put_echo_image
from daemon import unix_call
from fixtures_agent import Agent, build_path
from fixtures_manager import wait_for
from fixtures_vm import create, create_vm, kill_vmms, make_volume, wait_state

VIEWER_PW = "viewer-pass-0123"


@pytest.fixture(scope="module")
def demo_dir():
    d, why = build_demo()
    if d is None:
        pytest.skip(why)
    return d


@pytest.fixture
def agent(demo_dir, tmp_path):
    # The memory check of create (issue 14) asks the host: report enough
    # for the 200000 MiB VM, which then fails in QEMU itself.
    a = Agent(extra_args=["--hypervisor", "qemu", "--qemu-path", QEMU,
                          "--report-memory-mib", "400000"])
    put_echo_image(a.image_dir, demo_dir, str(tmp_path))
    a.start()
    yield a
    kill_vmms(a)
    a.cleanup()


def tail(manager, vm_id, n=None, token=None):
    q = "" if n is None else "?tail=%s" % n
    hdrs = {"Authorization": "Bearer " + (token or manager.token)}
    st, body, rh = manager.raw("GET", "/v1/vms/%s/console%s" % (vm_id, q), headers=hdrs)
    return st, body, rh


def console_text(manager, vm_id):
    st, body, _ = tail(manager, vm_id)
    return body if st == 200 and isinstance(body, str) else ""


def ws(manager, vm_id, token=None, headers=None):
    h = {"Authorization": "Bearer " + token} if token else {}
    h.update(headers or {})
    return WsClient(manager.port, "/v1/vms/%s/console/ws" % vm_id, headers=h)


def cli_env(manager):
    return {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", "NQRUST_URL": manager.url,
            "NQRUST_TOKEN": manager.token}


def cli_console_types(manager, name, line, want, timeout=60):
    """nqrust vm console NAME on a terminal: type line, read until want,
    detach with Ctrl-]; the output and the exit status."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(build_path("nqrust"), ["nqrust", "vm", "console", name], cli_env(manager))
    out = b""
    try:
        sent = False
        deadline = time.monotonic() + timeout
        while want.encode() not in out and time.monotonic() < deadline:
            if not sent and b"NQRUST-ECHO-READY" in out:
                os.write(fd, line.encode() + b"\r")
                sent = True
            if select.select([fd], [], [], 0.5)[0]:
                out += os.read(fd, 65536)
        os.write(fd, b"\x1d")
        while True:
            try:
                d = os.read(fd, 65536)
            except OSError:
                break
            if not d:
                break
            out += d
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return out.decode(errors="replace"), os.waitstatus_to_exitcode(status)


def has(text):
    return lambda out, texts: text.encode() in out


@pytest.mark.parametrize("engine", ["sqlite"], indirect=False)
def test_console_echo_guest_detail_and_roles(gates, manager, agent):
    st, vm = create_vm(manager, "localfile-default", "echo.ext4", name="echo",
                       memory_mib=256)
    assert st == 201, vm
    vid = vm["id"]
    assert wait_for(lambda: "NQRUST-ECHO-READY" in console_text(manager, vid),
                    timeout=240, interval=0.5), tail(manager, vid)

    # The detail: host, backend, disk on the host, history.
    st, d = manager.request("GET", "/v1/vms/" + vid)
    assert st == 200 and d["state"] == "running", d
    assert d["host"]["id"] == "local" and d["backend"]["kind"] == "localfile", d
    assert d["backend"]["id"] == "localfile-default", d
    assert d["disk"]["path"].endswith(".raw") and d["disk"]["size_bytes"] > 0, d
    assert 0 < d["disk"]["allocated_bytes"] <= d["disk"]["size_bytes"], d
    assert isinstance(d["state_history"], list), d

    # Bounds of tail, named; the default and a small tail.
    st, body, rh = tail(manager, vid, 16)
    assert st == 200 and 0 < len(body.encode()) <= 16, body
    assert int(rh["x-next-offset"]) - int(rh["x-offset"]) == len(body.encode())
    for bad in ("1048577", "-1", "lots", ""):
        st, body, _ = tail(manager, vid, bad)
        assert st == 422 and body["error"]["field"] == "tail", (bad, body)
    st, body, _ = tail(manager, vid, 1048576)
    assert st == 200 and "NQRUST-MARKER-ABSENT" in body

    # Authentication: nothing without a session, no cross-origin cookie.
    st, body, _ = manager.raw("GET", "/v1/vms/%s/console" % vid)
    assert st == 401, body
    c = ws(manager, vid)
    assert c.status == 401, c.head
    c.sock.close()
    st, login, rh = manager.raw("POST", "/v1/auth/login",
                                {"username": "admin", "password": manager.admin_password})
    cookie = rh["set-cookie"].split(";", 1)[0]
    c = ws(manager, vid, headers={"Cookie": cookie, "Origin": "http://evil.example"})
    assert c.status == 403, c.head
    c.sock.close()

    # An administrator types; the guest echoes.
    admin = ws(manager, vid, headers={"Cookie": cookie,
                                      "Origin": "http://127.0.0.1:%d" % manager.port})
    assert admin.status == 101, admin.head
    out, _ = admin.read_until(has("NQRUST-ECHO-READY"))
    assert b"NQRUST-MARKER-ABSENT" in out
    admin.send("hello-from-ws\r")
    admin.read_until(has("ECHO:hello-from-ws"))

    # A viewer watches but cannot type (WebSocket and POST alike).
    st, u = manager.request("POST", "/v1/users", {"username": "watcher",
                                                  "password": VIEWER_PW, "role": "viewer"})
    assert st == 201, u
    st, vl, _ = manager.raw("POST", "/v1/auth/login",
                            {"username": "watcher", "password": VIEWER_PW})
    viewer = ws(manager, vid, token=vl["token"])
    assert viewer.status == 101, viewer.head
    out, texts = viewer.read_until(lambda o, t: b"ECHO:hello-from-ws" in o and t)
    assert "read-only" in texts[0], texts
    viewer.send("viewer-typed\r")
    st, body, _ = manager.raw("POST", "/v1/vms/%s/console/input" % vid,
                              data=b"viewer-post\r",
                              headers={"Authorization": "Bearer " + vl["token"]})
    assert st == 403 and body["error"]["code"] == "forbidden", body
    admin.send("after-viewer\r")
    admin.read_until(has("ECHO:after-viewer"))
    viewer.read_until(has("ECHO:after-viewer"))  # output reaches every client
    log = tail(manager, vid)[1]
    assert "viewer-typed" not in log and "viewer-post" not in log, log[-500:]
    st, body, _ = manager.raw("POST", "/v1/vms/%s/console/input" % vid,
                              data=b"x" * 4097,
                              headers={"Authorization": "Bearer " + manager.token})
    assert st == 413, body
    # At most 8 clients per VM: the 9th is refused at the handshake.
    more = []
    for _ in range(6):
        k = ws(manager, vid, token=manager.token)
        assert k.status == 101, k.head
        k.read_until(has("NQRUST-ECHO-READY"))  # its session runs (counted)
        more.append(k)
    k = ws(manager, vid, token=manager.token)
    assert k.status == 429, k.head
    k.sock.close()
    for k in more:
        k.close()
    viewer.close()
    # Clients that reset the connection right after asking for the switch
    # (some before the 101 is out, some after): every session is freed —
    # the sanitizer's leak check at the manager's exit — and a new client
    # still gets the console.
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", manager.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.sendall(("GET /v1/vms/%s/console/ws HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                   "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
                   "Authorization: Bearer %s\r\n\r\n"
                   % (vid, base64.b64encode(os.urandom(16)).decode(),
                      manager.token)).encode())
        s.close()
    k = wait_for(lambda: (lambda c: c if c.status == 101 else c.sock.close())(
        ws(manager, vid, token=manager.token)), timeout=30, interval=0.2)
    assert k, "no console after clients that reset"
    k.read_until(has("NQRUST-ECHO-READY"))
    k.close()
    # One that goes away while its 101 is being prepared (the manager held
    # there by a gate): the switch never happens and its session is freed.
    gates.arm("console-ws-switch")
    s = socket.create_connection(("127.0.0.1", manager.port))
    s.sendall(("GET /v1/vms/%s/console/ws HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Authorization: Bearer %s\r\n\r\n"
               % (vid, base64.b64encode(os.urandom(16)).decode(), manager.token)).encode())
    gates.wait_reached("console-ws-switch")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    gates.release("console-ws-switch")
    assert wait_for(lambda: "went away before the switch" in manager.log(), timeout=30)

    # The CLI attaches a terminal: keys reach the guest, Ctrl-] detaches.
    out, rc = cli_console_types(manager, "echo", "typed-in-cli", "ECHO:typed-in-cli")
    assert "ECHO:typed-in-cli" in out and rc == 0, out[-2000:]
    assert "Detached." in out, out[-500:]

    # The guest powers itself off: the reason in words, in the history.
    admin.send("poweroff\r")
    admin.read_until(has("NQRUST-POWEROFF"))
    admin.close()
    vm = wait_state(manager, vid, ("stopped", "error"), timeout=60)
    assert vm["state"] == "stopped", vm
    assert vm["last_exit"]["reason"] == "the guest powered itself off", vm
    st, d = manager.request("GET", "/v1/vms/" + vid)
    assert any(h["action"] == "vm.exited" for h in d["state_history"]), d["state_history"]
    st, body, _ = tail(manager, vid)
    assert st == 200 and "NQRUST-POWEROFF" in body  # kept after the exit

    # The CLI: output only (not a terminal) ends with the stopped VM;
    # vm get tells the details in words.
    r = subprocess.run([build_path("nqrust"), "vm", "console", "echo", "--read-only"],
                       env=cli_env(manager), capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert b"NQRUST-MARKER-ABSENT" in r.stdout and b"NQRUST-POWEROFF" in r.stdout
    r = subprocess.run([build_path("nqrust"), "vm", "get", "echo"], env=cli_env(manager),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Last exit:  the guest powered itself off" in r.stdout, r.stdout
    assert "Host:       local (local)" in r.stdout and d["disk"]["path"] in r.stdout


@pytest.mark.parametrize("engine", ["sqlite"], indirect=False)
def test_qemu_memory_failure_in_words(manager, agent):
    st, vm = create_vm(manager, "localfile-default", "echo.ext4", name="huge",
                       memory_mib=200000)
    assert st == 201, vm
    vm = wait_state(manager, vm["id"], ("running", "error", "stopped"), timeout=120)
    words = "QEMU could not allocate 200000 MiB of guest memory"
    why = vm["error"] if vm["state"] == "error" else vm["last_exit"]["reason"]
    assert words in why, vm
    assert agent.state_dir not in why and "/console.log" not in why, why


def test_firecracker_console_through_stdin_and_stdout(vm_agent, fake_fc, smbd):
    """The agent's console routes with Firecracker: input goes to its stdin
    (a FIFO), the guest's output is its stdout (console.log); bounds."""
    def raw(method, p, data=None):
        return unix_call(vm_agent.socket, method, p, data=data)

    bid, vid, path, _ = make_volume(vm_agent, smbd)
    st, vm = create(vm_agent, bid, vid)
    assert st == 201 and vm["state"] == "running", vm
    base = "/v1/vms/%s/console" % vm["id"]
    st, _, _ = raw("POST", base + "/input", data=b"typed-into-fc\r\n")
    assert st == 200
    st, out, rh = raw("GET", base + "/stream?offset=0&wait=10")
    assert st == 200 and int(rh["x-next-offset"]) == len(out) > 0, (st, out)
    assert wait_for(lambda: b"ECHO:typed-into-fc" in raw("GET", base)[1],
                    timeout=30), raw("GET", base)[1]
    st, out, rh = raw("GET", base + "?tail=10")
    assert st == 200 and len(out) == 10 and int(rh["x-next-offset"]) >= 10
    st, out, _ = raw("GET", base + "?tail=2000000")
    assert st == 422 and b'"field":"tail"' in out, out
    st, out, _ = raw("POST", base + "/input", data=b"x" * 4097)
    assert st == 413, out
    st, _ = vm_agent.request("POST", "/v1/vms/%s/stop" % vm["id"])
    assert st == 200
    st, out, _ = raw("POST", base + "/input", data=b"late\n")
    assert st == 409 and b"invalid_state" in out, out
