#!/usr/bin/python3
"""Start a throwaway smbd + nqrust-agent + nqrust-manager for the browser
tests, print one JSON line with URLs and credentials on stdout, then keep
running until stdin closes or SIGTERM arrives, and clean everything up.

Reuses the integration fixtures (tests/integration) so the browser tests
drive exactly the daemons the pytest suite does. Loopback only.

With --second-agent, a second nqrust-agent (own state, mount root, image
dir) listens on a loopback TCP port with TLS and a bearer token, for the
Hosts page tests to enroll; its URL, token and certificate fingerprint are
in the JSON line under "second_agent".

With --qemu, the agent runs real QEMU guests (TCG): the echo guest of
tests/integration/console_guest.py is in its image dir as "echo.ext4"
(JSON "qemu_image"; null when the demo image cannot be built here)."""

import json
import os
import shutil
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from fixtures_agent import Agent, build_path  # noqa: E402
from fixtures_manager import Manager  # noqa: E402
from smbd import Smbd  # noqa: E402

try:  # VM support (issue 4): the fake Firecracker the integration tests use
    from fixtures_vm import FakeFirecracker, kill_vmms  # noqa: E402
except ImportError:
    FakeFirecracker = kill_vmms = None

IMAGE_NAME = "tiny.raw"
IMAGE_SIZE = 64 * 1024 * 1024


def put_images(agent):
    """A sparse base image for the VM wizard (images come from the agent's
    image dir) and a kernel beside it for the fake VMM."""
    with open(os.path.join(agent.image_dir, IMAGE_NAME), "wb") as f:
        f.truncate(IMAGE_SIZE)
    with open(os.path.join(agent.image_dir, "vmlinux"), "wb") as f:
        f.write(b"\x7fELF fake kernel for the fake firecracker")


def cert_fingerprint(agent):
    """SHA-256 fingerprint (AB:CD:…) of the agent's self-signed certificate,
    what `openssl x509 -fingerprint -sha256` prints; None without TLS."""
    cert = os.path.join(agent.state_dir, "tls", "agent-cert.pem")
    if not os.path.exists(cert):
        return None
    out = subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256",
                          "-in", cert], check=True, stdout=subprocess.PIPE).stdout
    return out.decode().strip().split("=", 1)[1]


def agent_supports(option):
    out = subprocess.run([build_path("nqrust-agent"), "--help"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT).stdout.decode()
    return option in out


def start_second(extra):
    if agent_supports("--host-name"):  # issue 12 (agent identity)
        extra = extra + ["--host-name", "second"]
    agent = Agent(tcp=True, extra_args=extra).start()
    put_images(agent)
    return agent, {
        "url": "https://127.0.0.1:%d" % agent.tcp_port,
        "token": agent.token,
        "fingerprint": cert_fingerprint(agent),
        "log": agent.log_path,
    }


def qemu_agent_args(work):
    """Agent arguments and the image to put for --qemu, or (None, why)."""
    from console_guest import QEMU, build_demo
    demo, why = build_demo()
    if demo is None:
        return None, why
    return ["--hypervisor", "qemu", "--qemu-path", QEMU,
            "--report-memory-mib", "400000"], demo


def main():
    def on_term(*_):
        raise SystemExit(0)  # unwinds into the cleanup below

    signal.signal(signal.SIGTERM, on_term)
    smbd = agent = second = manager = fc = None
    second_info = None
    try:
        smbd = Smbd().start()
        extra = []
        if FakeFirecracker is not None:
            fc = FakeFirecracker()
            extra = ["--firecracker-path", fc.path]
        qemu_image = qemu_demo = None
        if "--qemu" in sys.argv[1:]:
            qargs, qemu_demo = qemu_agent_args(None)
            if qargs is not None:
                extra = extra + qargs
        agent = Agent(extra_args=extra).start()
        put_images(agent)
        if qemu_demo and "--qemu-path" in extra:
            from console_guest import put_echo_image
            qemu_image = put_echo_image(agent.image_dir, qemu_demo, agent.root)
        if "--second-agent" in sys.argv[1:]:
            second, second_info = start_second(extra)
        manager = Manager(agent, admin_password="ui-" + os.urandom(6).hex()).start()
        print(json.dumps({
            "url": manager.url,
            "admin_user": "admin",
            "admin_password": manager.admin_password,
            "smb": {"host": smbd.host, "port": smbd.port, "user": smbd.user,
                    "password": smbd.password, "shares": smbd.shares},
            "image": IMAGE_NAME,
            "manager_log": manager.log_path,
            "agent_log": agent.log_path,
            "second_agent": second_info,
            "qemu_image": qemu_image,
        }), flush=True)
        # Wait for the parent: stdin EOF (parent died or closed it) or SIGTERM.
        while sys.stdin.buffer.read(1):
            pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for a in (agent, second):
            if a is not None and kill_vmms is not None:
                kill_vmms(a)  # no VMM outlives the run
        for obj in (manager, agent, second):
            if obj is not None:
                try:
                    obj.cleanup()
                except Exception as e:  # report, keep cleaning up
                    print("stack: cleanup: %s" % e, file=sys.stderr)
        if smbd is not None:
            smbd.stop()
        if fc is not None:
            shutil.rmtree(fc.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
