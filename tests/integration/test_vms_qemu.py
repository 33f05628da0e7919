"""One real boot under QEMU (TCG, -M microvm): the rootfs is a clone of the
demo image on the SMB share; the guest writes a marker and powers off; after
stop and start the guest sees its marker. The demo image is built (and
cached) by scripts/demo-image.sh; the test is skipped only when that script
says the kernel package cannot be fetched (exit 3)."""

import os
import shutil
import subprocess

import pytest

from fixtures_agent import REPO, Agent
from fixtures_manager import smb_config, wait_for
from fixtures_vm import kill_vmms

CACHE = os.environ.get("NQRUST_DEMO_IMAGE_DIR", os.path.join(REPO, "build", "demo-image"))
QEMU = "/usr/bin/qemu-system-x86_64"


@pytest.fixture(scope="module")
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
def agent(demo_image):
    a = Agent(extra_args=["--hypervisor", "qemu", "--qemu-path", QEMU])
    for f in ("demo.ext4", "demo.vmlinuz", "demo.initrd"):
        subprocess.run(["cp", "--sparse=always", os.path.join(demo_image, f),
                        a.image_dir], check=True)
    a.start()
    yield a
    kill_vmms(a)
    a.cleanup()


def serial(agent, vm_id):
    try:
        with open(os.path.join(agent.state_dir, "vms", vm_id, "serial.log"),
                  errors="replace") as f:
            return f.read()
    except OSError:
        return ""


def boot_until_poweroff(manager, agent, vm_id, timeout=240):
    def off():
        st, vm = manager.request("GET", "/v1/vms/" + vm_id)
        assert st == 200 and vm["state"] in ("provisioning", "running", "stopped"), vm
        return vm["state"] == "stopped" and "NQRUST-POWEROFF" in serial(agent, vm_id)
    assert wait_for(off, timeout=timeout, interval=0.5), serial(agent, vm_id)[-3000:]
    return serial(agent, vm_id)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=False)
def test_qemu_guest_persists_marker_on_smb(manager, agent, smbd):
    st, b = manager.create_backend("qemu-store", smb_config(smbd))
    assert st == 201, b
    st, vm = manager.request("POST", "/v1/vms", {
        "name": "demo", "vcpus": 1, "memory_mib": 256, "image_id": "demo.ext4",
        "storage_backend_id": b["id"]})
    assert st == 201, vm
    out = boot_until_poweroff(manager, agent, vm["id"])
    assert "NQRUST-MARKER-ABSENT" in out, out[-3000:]
    st, vm = manager.request("GET", "/v1/vms/" + vm["id"])
    assert vm["volume"]["path"].startswith(agent.mount_base)
    backing = os.path.join(smbd.shares["guest"], os.path.basename(vm["volume"]["path"]))
    # The marker is in the file on the share, read without the guest.
    p = subprocess.run(["/usr/sbin/debugfs", "-R", "cat /marker", backing],
                       capture_output=True, text=True)
    assert p.stdout.strip() == "booted", (p.stdout, p.stderr)

    st, r = manager.request("POST", "/v1/vms/%s/stop" % vm["id"])
    assert st == 200 and r["state"] == "stopped", r
    st, r = manager.request("POST", "/v1/vms/%s/start" % vm["id"])
    assert st == 200 and r["state"] == "running", r
    out = boot_until_poweroff(manager, agent, vm["id"])
    assert "NQRUST-MARKER-FOUND 1" in out, out[-3000:]
    st, _ = manager.request("DELETE", "/v1/vms/" + vm["id"])
    assert st == 204 and not os.path.exists(backing)
