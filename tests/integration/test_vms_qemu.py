"""One real boot under QEMU (TCG, -M microvm): the rootfs is a clone of the
demo image on the SMB share; the guest writes a marker and powers off; after
stop and start the guest sees its marker. The demo image is built (and
cached) by scripts/demo-image.sh; the test is skipped only when that script
says the kernel package cannot be fetched (exit 3)."""

import os
import re
import shutil
import subprocess

import pytest

from fixtures_manager import smb_config, wait_for
from fixtures_qemu import boot_until_poweroff, serial
from fixtures_vm import create_vm, kill_vmms


@pytest.fixture
def agent(qemu_agent):
    return qemu_agent


@pytest.mark.parametrize("engine", ["sqlite"], indirect=False)
def test_qemu_guest_persists_marker_on_smb(manager, agent, smbd):
    st, b = manager.create_backend("qemu-store", smb_config(smbd))
    assert st == 201, b
    st, vm = create_vm(manager, b["id"], "demo.ext4", name="demo", memory_mib=256)
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


# A guest that appends a numbered line to /ticks and syncs every 0.2 s,
# TICKS times per boot, reports whether its root is still read-write, and
# powers off. On the next boot it first reports how many ticks it finds.
TICKER_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
n=0
[ -f /ticks ] && n=$(wc -l < /ticks)
echo "NQRUST-TICKER-START $n"
i=0
while [ $i -lt %(ticks)d ]; do
	n=$((n+1))
	echo "tick $n" >> /ticks && sync && echo "NQRUST-TICK $n"
	i=$((i+1))
	sleep 0.2
done
if grep -q ' / ext4 rw' /proc/mounts; then echo "NQRUST-ROOT-RW"; else echo "NQRUST-ROOT-RO"; fi
sync
echo "NQRUST-POWEROFF"
poweroff -f
"""


def make_ticker_image(agent, tmp_path, ticks):
    """demo.ext4 with TICKER_INIT as /sbin/init, as ticker.ext4."""
    img = os.path.join(agent.image_dir, "ticker.ext4")
    subprocess.run(["cp", "--sparse=always", os.path.join(agent.image_dir, "demo.ext4"),
                    img], check=True)
    for ext in ("vmlinuz", "initrd"):
        shutil.copy(os.path.join(agent.image_dir, "demo." + ext),
                    os.path.join(agent.image_dir, "ticker." + ext))
    init = tmp_path / "init"
    init.write_text(TICKER_INIT % {"ticks": ticks})
    for cmd in ("rm /sbin/init", "write %s /sbin/init" % init,
                "sif /sbin/init mode 0100755"):
        p = subprocess.run(["/usr/sbin/debugfs", "-w", "-R", cmd, img],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    return "ticker.ext4"


def debugfs_cat(image, path):
    p = subprocess.run(["/usr/sbin/debugfs", "-R", "cat " + path, image],
                       capture_output=True, text=True)
    return p.stdout


@pytest.mark.parametrize("engine", ["sqlite"], indirect=False)
def test_qemu_guest_rides_through_smb_outage(manager, agent, tmp_path):
    """smbd goes away for 5 s while the guest writes and syncs: the guest
    sees no I/O error, its root stays read-write, and every tick it
    reported is in the file on the share, also after a stop and start."""
    from smbd import Smbd
    # The bridge bounds a write's life by io_deadline = 2 × renew interval
    # - 1 s (docs/leases.md, "Late writes"): the default 30 s lease rides
    # through 8.25 s, enough for this 5 s outage and smbd's restart.
    s = Smbd().start()
    vm = b = None
    try:
        image = make_ticker_image(agent, tmp_path, ticks=60)
        st, b = manager.create_backend("ride-through", smb_config(s))
        assert st == 201, b
        st, vm = create_vm(manager, b["id"], image, name="ticker", memory_mib=256)
        assert st == 201, vm
        assert wait_for(lambda: re.search(r"NQRUST-TICK 10\b", serial(agent, vm["id"])),
                        timeout=240, interval=0.2), serial(agent, vm["id"])[-3000:]
        s.restart(down_s=5.0)
        out = boot_until_poweroff(manager, agent, vm["id"])
        for bad in ("I/O error", "EXT4-fs error", "read-only", "Buffer I/O",
                    "Aborting journal"):
            assert bad not in out, out[-3000:]
        assert "NQRUST-ROOT-RW" in out, out[-3000:]
        assert re.search(r"NQRUST-TICK 60\b", out), out[-3000:]
        st, vm = manager.request("GET", "/v1/vms/" + vm["id"])
        backing = os.path.join(s.shares["guest"], os.path.basename(vm["volume"]["path"]))
        ticks = debugfs_cat(backing, "/ticks").splitlines()
        assert ticks == ["tick %d" % i for i in range(1, 61)], ticks[-5:]

        st, r = manager.request("POST", "/v1/vms/%s/start" % vm["id"])
        assert st == 200 and r["state"] == "running", r
        assert wait_for(lambda: "NQRUST-TICKER-START" in serial(agent, vm["id"]),
                        timeout=240, interval=0.2)
        assert re.search(r"NQRUST-TICKER-START 60\b", serial(agent, vm["id"]))
        st, _ = manager.request("DELETE", "/v1/vms/" + vm["id"])
        assert st == 204
        st, _ = manager.request("DELETE", "/v1/storage/backends/" + b["id"])
        assert st == 204
    finally:
        # Unmount while the server is up: with it gone the unmount would
        # wait out the mount's grace.
        kill_vmms(agent)
        if vm and "id" in vm:
            manager.request("DELETE", "/v1/vms/" + vm["id"])
        if b and "id" in b:
            manager.request("DELETE", "/v1/storage/backends/" + b["id"])
        s.stop()
