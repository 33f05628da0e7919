"""The echo guest for console tests (API and browser): the demo image
(scripts/demo-image.sh) with an init that prints its marker as the demo's
does (NQRUST-MARKER-ABSENT, then -FOUND N), then reads
lines from the serial port and prints each back as ECHO:<line>; the line
"poweroff" makes it power itself off. A tiny WebSocket client (RFC 6455,
client side) for the manager's console endpoint."""

import base64
import os
import shutil
import socket
import struct
import subprocess

from fixtures_agent import REPO

DEMO_CACHE = os.environ.get("NQRUST_DEMO_IMAGE_DIR",
                            os.path.join(REPO, "build", "demo-image"))
QEMU = "/usr/bin/qemu-system-x86_64"

ECHO_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
if [ -f /marker ]; then
	echo "NQRUST-MARKER-FOUND $(wc -l < /marker)"
else
	echo "NQRUST-MARKER-ABSENT"
fi
echo "booted" >> /marker
sync
echo "NQRUST-ECHO-READY"
while read -r line; do
	[ "$line" = "poweroff" ] && break
	echo "ECHO:$line"
done
echo "NQRUST-POWEROFF"
poweroff -f
"""


def build_demo(cache=DEMO_CACHE):
    """The demo image dir, or (None, why) when it cannot be built here."""
    if not os.access(QEMU, os.X_OK):
        return None, "qemu-system-x86 is not installed (scripts/deps.sh test)"
    p = subprocess.run([os.path.join(REPO, "scripts", "demo-image.sh"), cache],
                       capture_output=True, text=True, timeout=900)
    if p.returncode == 3:
        return None, "demo image cannot be built here: " + p.stderr.strip()
    assert p.returncode == 0, p.stderr
    return cache, None


def put_echo_image(image_dir, demo_dir, work_dir, name="echo"):
    """<name>.ext4 (+ .vmlinuz, .initrd) in image_dir: the echo guest."""
    img = os.path.join(image_dir, name + ".ext4")
    subprocess.run(["cp", "--sparse=always", os.path.join(demo_dir, "demo.ext4"), img],
                   check=True)
    for ext in ("vmlinuz", "initrd"):
        shutil.copy(os.path.join(demo_dir, "demo." + ext),
                    os.path.join(image_dir, "%s.%s" % (name, ext)))
    init = os.path.join(work_dir, "echo-init")
    with open(init, "w") as f:
        f.write(ECHO_INIT)
    for cmd in ("rm /sbin/init", "write %s /sbin/init" % init,
                "sif /sbin/init mode 0100755"):
        p = subprocess.run(["/usr/sbin/debugfs", "-w", "-R", cmd, img],
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    return name + ".ext4"


class WsClient:
    """A WebSocket client on 127.0.0.1:port. status is the handshake's HTTP
    status; frames() returns (opcode, payload) pairs read so far."""

    def __init__(self, port, path, headers=None, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1:%d" % port,
                 "Upgrade: websocket", "Connection: Upgrade",
                 "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        lines += ["%s: %s" % kv for kv in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(4096)
            if not d:
                break
            self.buf += d
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        self.head = head.decode(errors="replace")
        self.status = int(self.head.split(" ", 2)[1]) if self.head else 0

    def send(self, data, opcode=1):
        data = data.encode() if isinstance(data, str) else data
        mask = os.urandom(4)
        n = len(data)
        hdr = bytes([0x80 | opcode])
        if n < 126:
            hdr += bytes([0x80 | n])
        elif n < 65536:
            hdr += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            hdr += bytes([0x80 | 127]) + struct.pack(">Q", n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(hdr + mask + body)

    def _frame(self):
        while True:
            if len(self.buf) >= 2:
                n, hl = self.buf[1] & 0x7f, 2
                if n == 126 and len(self.buf) >= 4:
                    n, hl = struct.unpack(">H", self.buf[2:4])[0], 4
                elif n == 127 and len(self.buf) >= 10:
                    n, hl = struct.unpack(">Q", self.buf[2:10])[0], 10
                if n < 126 or hl > 2:
                    if len(self.buf) >= hl + n:
                        op, p = self.buf[0] & 0x0f, self.buf[hl:hl + n]
                        self.buf = self.buf[hl + n:]
                        return op, p
            d = self.sock.recv(65536)
            if not d:
                return None
            self.buf += d

    def read_until(self, pred, timeout=60):
        """Frames until pred(output bytes so far, text frames) holds; returns
        (output, texts). Raises socket.timeout when it never does."""
        self.sock.settimeout(timeout)
        out, texts = b"", []
        while not pred(out, texts):
            f = self._frame()
            if f is None:
                break
            if f[0] == 2:
                out += f[1]
            elif f[0] == 1:
                texts.append(f[1].decode(errors="replace"))
            elif f[0] == 8:
                texts.append("<close>")
                break
        return out, texts

    def close(self):
        try:
            self.send(b"\x03\xe8", opcode=8)
        except OSError:
            pass
        self.sock.close()
