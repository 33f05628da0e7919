"""Real guests under QEMU (TCG): the demo image (scripts/demo-image.sh,
cached under build/demo-image), an agent running QEMU with it, and helpers
that read a VM's serial log and wait for the demo guest to power off."""

import os
import subprocess

import pytest

from fixtures_agent import REPO, Agent
from fixtures_manager import wait_for

CACHE = os.environ.get("NQRUST_DEMO_IMAGE_DIR", os.path.join(REPO, "build", "demo-image"))
QEMU = "/usr/bin/qemu-system-x86_64"


@pytest.fixture(scope="session")
def demo_image():
    if not os.access(QEMU, os.X_OK):
        pytest.skip("qemu-system-x86 is not installed (scripts/deps.sh test)")
    p = subprocess.run([os.path.join(REPO, "scripts", "demo-image.sh"), CACHE],
                       capture_output=True, text=True, timeout=900)
    if p.returncode == 3:
        pytest.skip("demo image cannot be built here: " + p.stderr.strip())
    assert p.returncode == 0, p.stderr
    return CACHE


@pytest.fixture
def qemu_agent(demo_image):
    """An agent that runs QEMU, with the demo image in its image dir."""
    a = Agent(extra_args=["--hypervisor", "qemu", "--qemu-path", QEMU])
    for f in ("demo.ext4", "demo.vmlinuz", "demo.initrd"):
        subprocess.run(["cp", "--sparse=always", os.path.join(demo_image, f),
                        a.image_dir], check=True)
    from fixtures_vm import kill_vmms  # a plugin loaded after this one
    a.start()
    yield a
    kill_vmms(a)
    a.cleanup()


def serial(agent, vm_id):
    """The VM's serial log so far ("" before it has one)."""
    try:
        with open(os.path.join(agent.state_dir, "vms", vm_id, "serial.log"),
                  errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def boot_until_poweroff(manager, agent, vm_id, timeout=240):
    """Wait until the demo guest printed NQRUST-POWEROFF and the VM is
    stopped; its serial log."""
    def off():
        st, vm = manager.request("GET", "/v1/vms/" + vm_id)
        assert st == 200 and vm["state"] in ("provisioning", "running", "stopped"), vm
        return vm["state"] == "stopped" and "NQRUST-POWEROFF" in serial(agent, vm_id)
    assert wait_for(off, timeout=timeout, interval=0.5), serial(agent, vm_id)[-3000:]
    return serial(agent, vm_id)
