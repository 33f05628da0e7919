#!/usr/bin/python3
"""A faithful fake of Firecracker's API server, for tests on hosts where
Firecracker cannot run. Invoked like the real binary:

    firecracker --api-sock PATH [--id ID]

It serves the documented HTTP API over the unix socket PATH, validates every
request body as Firecracker does (required fields, types, unknown fields
rejected with 400 and {"fault_message": ...}), enforces the pre-boot /
post-boot state machine, opens path_on_host read-write like the real VMM,
and appends every request to requests.jsonl beside this program. A
SendCtrlAltDel after InstanceStart makes it exit, as Firecracker does when
the guest resets, unless a file ignore-ctrl-alt-del-<id> exists beside this
program: then the guest ignores it (a hung guest) and the VMM runs on until
it is killed. A SIGTERM is recorded in requests.jsonl too (method "SIGNAL",
path "SIGTERM") before the fake exits, so a test sees whether the guest
was asked before it was killed. A file write-pattern-<id> beside this program (JSON
{"offset", "size", "pattern", "threads", "fsync_every", "pause"}) makes the
started guest write: that many threads pwrite the pattern over [offset,
offset + size) of the root drive in a loop, with an fdatasync every
fsync_every rounds and pause seconds between rounds, until the VMM dies
(a guest that keeps its disk busy); with "hold_after": N, each thread stops
after N rounds until a file write-go-<id> exists beside this program.
PATCH /vm {"state": "Paused" | "Resumed"} (after InstanceStart only, as
Firecracker) pauses and resumes the guest: the writers stop writing while it
is paused (a pwrite in progress finishes first, as a vCPU's exit does).
As in Firecracker, stdout is the guest's serial output and stdin its serial
input: once started, the fake guest reads lines from stdin and prints each
back as "ECHO:<line>" (bytes before the start are dropped, as a serial port
without a guest would). Stdlib only.
"""

import http.server
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LOG = os.path.join(HERE, "requests.jsonl")

# name -> (type, required). Types as Firecracker's swagger (firecracker.yaml).
SCHEMAS = {
    "machine-config": {
        "vcpu_count": (int, True), "mem_size_mib": (int, True), "smt": (bool, False),
        "cpu_template": (str, False), "track_dirty_pages": (bool, False),
        "huge_pages": (str, False),
    },
    "boot-source": {
        "kernel_image_path": (str, True), "boot_args": (str, False),
        "initrd_path": (str, False),
    },
    "drives": {
        "drive_id": (str, True), "path_on_host": (str, True),
        "is_root_device": (bool, True), "is_read_only": (bool, False),
        "partuuid": (str, False), "cache_type": (str, False),
        "io_engine": (str, False), "rate_limiter": (dict, False),
    },
    "actions": {"action_type": (str, True)},
    "vm": {"state": (str, True)},
}
ACTIONS = ("InstanceStart", "SendCtrlAltDel", "FlushMetrics")


class Fault(Exception):
    pass


def check(schema, body):
    if not isinstance(body, dict):
        raise Fault("The request body must be a JSON object.")
    for k in body:
        if k not in schema:
            raise Fault("unknown field `%s`" % k)
    for k, (t, req) in schema.items():
        if k not in body:
            if req:
                raise Fault("missing field `%s`" % k)
            continue
        v = body[k]
        ok = isinstance(v, bool) if t is bool else (
            isinstance(v, t) and not isinstance(v, bool))
        if not ok:
            raise Fault("invalid type for `%s`: expected %s" % (k, t.__name__))


class VMM:
    def __init__(self, vm_id):
        self.id = vm_id
        self.lock = threading.Lock()
        self.started = False
        self.paused = False
        self.io = threading.Lock()  # held by a writer's round: pause waits for it
        self.machine = {"vcpu_count": 1, "mem_size_mib": 128}
        self.boot = None
        self.drives = {}
        self.fds = {}

    def put(self, path, body):
        parts = path.strip("/").split("/")
        kind = parts[0]
        if kind not in SCHEMAS or (kind == "drives") != (len(parts) == 2) or len(parts) > 2:
            raise Fault("Invalid request method and/or path: PUT %s." % path)
        check(SCHEMAS[kind], body)
        if kind == "actions":
            return self.action(body["action_type"])
        if self.started:
            raise Fault("The requested operation is not supported after starting "
                        "the microVM.")
        if kind == "machine-config":
            if not 1 <= body["vcpu_count"] <= 32:
                raise Fault("The vCPU number is invalid! The vCPU number can only be 1 "
                            "or an even number when SMT is enabled.")
            if body["mem_size_mib"] < 1:
                raise Fault("The memory size (MiB) is invalid.")
            self.machine = body
        elif kind == "boot-source":
            for k in ("kernel_image_path", "initrd_path"):
                if k in body:
                    try:
                        with open(body[k], "rb"):
                            pass
                    except OSError as e:
                        raise Fault("Cannot open %s: %s" % (k, e))
            self.boot = body
        elif kind == "drives":
            if body["drive_id"] != parts[1]:
                raise Fault("The id from the path [%s] does not match the id from the "
                            "body [%s]!" % (parts[1], body["drive_id"]))
            if body["is_root_device"] and any(
                    d["is_root_device"] for i, d in self.drives.items() if i != parts[1]):
                raise Fault("A root block device already exists!")
            if body.get("cache_type", "Unsafe") not in ("Unsafe", "Writeback"):
                raise Fault("unknown variant `%s`, expected `Unsafe` or `Writeback`"
                            % body["cache_type"])
            if body.get("io_engine", "Sync") not in ("Sync", "Async"):
                raise Fault("unknown variant `%s`, expected `Sync` or `Async`"
                            % body["io_engine"])
            ro = body.get("is_read_only", False)
            try:
                fd = os.open(body["path_on_host"], os.O_RDONLY if ro else os.O_RDWR)
            except OSError as e:
                raise Fault("Unable to create the block device: %s" % e)
            if parts[1] in self.fds:
                os.close(self.fds[parts[1]])
            self.fds[parts[1]] = fd
            self.drives[parts[1]] = body

    def patch_vm(self, body):
        check(SCHEMAS["vm"], body)
        if body["state"] not in ("Paused", "Resumed"):
            raise Fault("unknown variant `%s`, expected `Paused` or `Resumed`"
                        % body["state"])
        if not self.started:
            raise Fault("The requested operation is not supported before starting "
                        "the microVM.")
        if body["state"] == "Paused":
            with self.io:
                self.paused = True
        else:
            self.paused = False

    def serial_echo(self):
        """The guest's side of the serial port: its stdin, line by line."""
        try:
            for line in sys.stdin.buffer:
                sys.stdout.buffer.write(b"ECHO:" + line.rstrip(b"\r\n") + b"\n")
                sys.stdout.flush()
        except (OSError, ValueError):
            pass

    def action(self, name):
        if name not in ACTIONS:
            raise Fault("unknown variant `%s`" % name)
        if name == "InstanceStart":
            if self.started:
                raise Fault("The requested operation is not supported after starting "
                            "the microVM.")
            if self.boot is None:
                raise Fault("Cannot start microvm without kernel configuration.")
            self.started = True
            self.start_writers()
            threading.Thread(target=self.serial_echo, daemon=True).start()
        elif name == "SendCtrlAltDel":
            if not self.started:
                raise Fault("The requested operation is not supported before starting "
                            "the microVM.")
            if os.path.exists(os.path.join(HERE, "ignore-ctrl-alt-del-" + self.id)):
                return  # Accepted, but the guest never resets.
            # The guest resets; Firecracker exits.
            threading.Timer(0.1, lambda: os._exit(0)).start()

    def start_writers(self):
        try:
            with open(os.path.join(HERE, "write-pattern-" + self.id)) as f:
                w = json.load(f)
        except FileNotFoundError:
            return
        root = [i for i, d in self.drives.items() if d["is_root_device"]]
        fd = self.fds[root[0]]
        block = (w["pattern"].encode() * (w["size"] // len(w["pattern"]) + 1))[:w["size"]]

        go = os.path.join(HERE, "write-go-" + self.id)

        def write_loop():
            n = 0
            while True:
                hold = w.get("hold_after")
                if hold is not None and n >= hold and not os.path.exists(go):
                    time.sleep(0.01)
                    continue
                if self.paused:
                    time.sleep(0.01)
                    continue
                try:
                    with self.io:
                        if self.paused:
                            continue
                        os.pwrite(fd, block, w["offset"])
                        n += 1
                        if n % w.get("fsync_every", 4) == 0:
                            os.fdatasync(fd)
                    time.sleep(w.get("pause", 0))
                except OSError:
                    time.sleep(0.05)  # a failing disk: the guest retries
        for _ in range(w.get("threads", 2)):
            threading.Thread(target=write_loop, daemon=True).start()

    def info(self):
        state = "Not started"
        if self.started:
            state = "Paused" if self.paused else "Running"
        return {"id": self.id, "state": state,
                "vmm_version": "1.7.0-fake", "app_name": "Firecracker"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def address_string(self):
        return "unix"

    def reply(self, status, obj=None):
        data = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, body, status, fault=None):
        entry = {"vm": VM.id, "method": self.command, "path": self.path,
                 "body": body, "status": status}
        if fault:
            entry["fault"] = fault
        with open(LOG, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def do_GET(self):
        if self.path == "/":
            self.record(None, 200)
            return self.reply(200, VM.info())
        if self.path == "/machine-config":
            self.record(None, 200)
            return self.reply(200, VM.machine)
        self.record(None, 400)
        self.reply(400, {"fault_message": "Invalid request method and/or path."})

    def do_PATCH(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        body = None
        try:
            if self.path != "/vm":
                raise Fault("Invalid request method and/or path: PATCH %s." % self.path)
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise Fault("invalid JSON: %s" % e)
            with VM.lock:
                VM.patch_vm(body)
        except Fault as e:
            self.record(body if body is not None else raw.decode(errors="replace"),
                        400, str(e))
            return self.reply(400, {"fault_message": str(e)})
        self.record(body, 204)
        self.reply(204)

    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        body = None
        try:
            if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                raise Fault("Content-Type must be application/json.")
            try:
                body = json.loads(raw)
            except ValueError as e:
                raise Fault("invalid JSON: %s" % e)
            with VM.lock:
                VM.put(self.path, body)
        except Fault as e:
            self.record(body if body is not None else raw.decode(errors="replace"),
                        400, str(e))
            return self.reply(400, {"fault_message": str(e)})
        self.record(body, 204)
        self.reply(204)


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def main(argv):
    global VM
    sock, vm_id = None, "anonymous-instance"
    i = 1
    while i < len(argv):
        if argv[i] == "--api-sock" and i + 1 < len(argv):
            sock = argv[i + 1]
            i += 2
        elif argv[i] == "--id" and i + 1 < len(argv):
            vm_id = argv[i + 1]
            i += 2
        else:
            sys.stderr.write("Arguments parsing error: unexpected %s\n" % argv[i])
            return 1
    if not sock:
        sys.stderr.write("Arguments parsing error: --api-sock is required\n")
        return 1
    VM = VMM(vm_id)
    if os.path.exists(sock):
        sys.stderr.write("Failed to open the API socket: address in use\n")
        return 1
    srv = Server(sock, Handler)
    def on_term(*_):
        try:
            with open(LOG, "a") as f:
                f.write(json.dumps({"vm": VM.id, "method": "SIGNAL", "path": "SIGTERM",
                                    "body": None, "status": 0}) + "\n")
        finally:
            os._exit(0)
    signal.signal(signal.SIGTERM, on_term)
    sys.stdout.write("Running Firecracker v1.7.0-fake\n")
    sys.stdout.flush()
    srv.serve_forever()
    return 0


VM = None
if __name__ == "__main__":
    sys.exit(main(sys.argv))
