"""Several hosts on this one machine: the multi-host harness (issue 12).

Topology (/work/shared/TESTING.md, "Network namespaces"):
- the manager (on PostgreSQL), smbd and the built-in "local" agent run in
  the root network namespace;
- each enrolled host is an agent in its own network namespace, joined to
  the root namespace by a veth pair (10.231.<n>.1 root side, .2 in the
  namespace). The agent is started with `nsenter --net=...`, which changes
  only the network namespace: its FUSE mounts, unix socket and VMMs stay
  visible to the test (`ip netns exec` would also give it a private mount
  namespace and hide them);
- smbd also listens on a service address (10.231.<base>.1/32) on a veth
  pair of its own that never goes down, so every host reaches the share
  at one address while any one host's link is cut.

Names are unique per test run (nq<pid>...), addresses come from a free
10.231.x.0/24 block, and everything (processes in the namespaces, the
namespaces, the veths) is removed at teardown, also after a failure.

Tools for the assertions: Capture (AF_PACKET on a root-side veth: no new
package), VmmWatcher (which host's VMM has a disk file open, sampled every
50 ms, with exact exit times from pidfds, and the lease file's history)."""

import hashlib
import json
import os
import select
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from daemon import REPO, build_path, wait_for
from fixtures_agent import Agent
from fixtures_manager import Manager
from smbd import Smbd

QEMU = "/usr/bin/qemu-system-x86_64"
DEMO_CACHE = os.environ.get("NQRUST_DEMO_IMAGE_DIR",
                            os.path.join(REPO, "build", "demo-image"))
LEASE_SECONDS = 6
VMM_COMMS = ("qemu-system-x86", "firecracker")
ETH_P_ALL = 0x0003


def run(argv, check=True):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
    return r


def now_ms():
    return int(time.time() * 1000)


# -- network namespaces ----------------------------------------------------

def _used_blocks():
    out = run(["ip", "-4", "-o", "addr", "show"]).stdout + run(["ip", "-4", "route"]).stdout
    used = set()
    for word in out.split():
        if word.startswith("10.231."):
            used.add(int(word.split(".")[2].split("/")[0]))
    return used


class NetHost:
    def __init__(self, tag, name, subnet):
        self.name = name
        self.ns = tag + name
        self.root_if = tag + name + "r"
        self.ns_if = tag + name + "n"
        self.gw = "10.231.%d.1" % subnet
        self.ip = "10.231.%d.2" % subnet
        self.partitioned = False
        self.share_blocked = False


class Net:
    """Namespaces and veth pairs for the hosts of one test module."""

    def __init__(self, max_hosts=4):
        self.tag = "nq%d" % (os.getpid() % 100000)
        used = _used_blocks()
        start = (os.getpid() % 40) * 5
        for i in range(50):
            b = (start + 5 * i) % 250
            if not used & set(range(b, b + max_hosts + 1)):
                break
        else:
            raise RuntimeError("no free 10.231.x.0/24 block")
        self.base = b
        self.service_ip = "10.231.%d.1" % b
        self.svc_if = self.tag + "s"
        self.hosts = {}

    def start(self):
        run(["ip", "link", "add", self.svc_if, "type", "veth", "peer", "name",
             self.svc_if + "p"])
        run(["ip", "addr", "add", self.service_ip + "/32", "dev", self.svc_if])
        run(["ip", "link", "set", self.svc_if + "p", "up"])
        run(["ip", "link", "set", self.svc_if, "up"])
        return self

    def add_host(self, name):
        h = NetHost(self.tag, name, self.base + 1 + len(self.hosts))
        self.hosts[name] = h
        run(["ip", "netns", "add", h.ns])
        run(["ip", "link", "add", h.root_if, "type", "veth", "peer", "name", h.ns_if])
        run(["ip", "link", "set", h.ns_if, "netns", h.ns])
        run(["ip", "addr", "add", h.gw + "/24", "dev", h.root_if])
        run(["ip", "link", "set", h.root_if, "up"])
        for argv in (["addr", "add", h.ip + "/24", "dev", h.ns_if],
                     ["link", "set", "lo", "up"], ["link", "set", h.ns_if, "up"],
                     ["route", "add", "default", "via", h.gw]):
            run(["ip", "-n", h.ns] + argv)
        return h

    def partition(self, name):
        """Cut host name off from the share and the manager (link down on
        the root side: its packets go nowhere, nothing answers it)."""
        run(["ip", "link", "set", self.hosts[name].root_if, "down"])
        self.hosts[name].partitioned = True

    def heal(self, name):
        h = self.hosts[name]
        run(["ip", "link", "set", h.root_if, "up"])
        h.partitioned = False
        # The namespace keeps its default route across the carrier loss.
        run(["ip", "-n", h.ns, "route", "replace", "default", "via", h.gw])

    def block_share(self, name, on=True):
        """Host name loses the share only (its manager link stays)."""
        h = self.hosts[name]
        run(["ip", "-n", h.ns, "route", "add" if on else "del", "blackhole",
             self.service_ip + "/32"], check=on)
        h.share_blocked = on

    def ns_pids(self, name):
        out = run(["ip", "netns", "pids", self.hosts[name].ns], check=False).stdout
        return [int(p) for p in out.split()]

    def cleanup(self):
        for name, h in self.hosts.items():
            for pid in self.ns_pids(name):
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
            run(["ip", "netns", "del", h.ns], check=False)
            run(["ip", "link", "del", h.root_if], check=False)
        run(["ip", "link", "del", self.svc_if], check=False)


# -- agents ----------------------------------------------------------------

def fingerprint_of(der):
    d = hashlib.sha256(der).hexdigest().upper()
    return ":".join(d[i:i + 2] for i in range(0, len(d), 2))


def presented_fingerprint(host, port, timeout=10):
    """SHA-256 fingerprint of the certificate host:port presents."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((host, port), timeout=timeout) as s:
        with ctx.wrap_socket(s) as t:
            return fingerprint_of(t.getpeercert(binary_form=True))


class HostAgent(Agent):
    """An nqrust-agent for one host: QEMU guests, short leases, its own
    host name; with net_host, in that network namespace with its TLS
    listener on the namespace's address."""

    def __init__(self, name, net_host=None, memory_mib=None, extra_args=()):
        args = ["--hypervisor", "qemu", "--qemu-path", QEMU, "--host-name", name,
                "--lease-seconds", str(LEASE_SECONDS), "--vm-stop-timeout", "3"]
        if memory_mib:
            args += ["--report-memory-mib", str(memory_mib)]
        super().__init__(driver="fuse", extra_args=args + list(extra_args),
                         tcp=net_host is not None)
        self.host_name = name
        self.net_host = net_host
        self.host_id = "local" if net_host is None else None

    @property
    def url(self):
        return "https://%s:%d" % (self.net_host.ip, self.tcp_port)

    def args(self):
        a = super().args()
        if self.net_host is None:
            return a
        a = [self.net_host.ip + ":%d" % self.tcp_port
             if x == "127.0.0.1:%d" % self.tcp_port else x for x in a]
        return ["nsenter", "--net=/run/netns/" + self.net_host.ns, "--"] + a

    def fingerprint(self):
        return presented_fingerprint(self.net_host.ip, self.tcp_port)

    def vm_ids(self):
        st, vms = self.request("GET", "/v1/vms", timeout=30)
        assert st == 200, vms
        return [v["id"] for v in vms]

    def serial(self, vm_id):
        try:
            with open(os.path.join(self.state_dir, "vms", vm_id, "serial.log"),
                      errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cred_files(self, backend_id):
        try:
            return sorted(f for f in os.listdir(self.cred_dir) if backend_id in f)
        except FileNotFoundError:
            return []

    def cred_snapshot(self):
        out = {}
        for d, _, files in os.walk(self.cred_dir):
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    out[os.path.join(d, f)] = hashlib.sha256(fh.read()).hexdigest()
        return out

    def mounted_backends(self):
        st, ms = self.request("GET", "/v1/storage/smb/mounts", timeout=30)
        assert st == 200, ms
        return [m.get("backend_id") for m in ms]


# -- packet capture --------------------------------------------------------

class Capture:
    """Every frame crossing interface ifname (both directions), kept in
    memory by a thread reading an AF_PACKET socket."""

    def __init__(self, ifname):
        self.ifname = ifname
        self.frames = []
        self._stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((ifname, 0))
        self.sock.settimeout(0.2)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                self.frames.append(self.sock.recv(65536))
            except socket.timeout:
                continue
            except OSError:  # ENETDOWN while the link is cut
                time.sleep(0.1)

    def data(self):
        return b"\0".join(self.frames)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def found(self, secrets):
        """The secrets (str) seen on the wire in ASCII/UTF-8 or UTF-16LE."""
        data = self.data()
        return [s for s in secrets
                if s.encode() in data or s.encode("utf-16-le") in data]

    def self_test(self, dst_ip):
        """Prove the capture sees plain bytes: a UDP datagram with a canary
        sent to dst_ip (through this interface) must show up."""
        canary = "nqrust-canary-" + uuid.uuid4().hex
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(canary.encode(), (dst_ip, 9))
        return wait_for(lambda: self.found([canary]), timeout=10, interval=0.05)


# -- who has the disk open -------------------------------------------------

def _proc_start_ms(pid):
    """Wall-clock start of pid in ms (10 ms precision)."""
    with open("/proc/%d/stat" % pid) as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    boot = time.time() - time.clock_gettime(time.CLOCK_BOOTTIME)
    return int((boot + ticks / os.sysconf("SC_CLK_TCK")) * 1000)


class VmmWatcher:
    """Samples every ~50 ms which VMM processes have a file named
    file_name open (an fd in /proc/<pid>/fd), attributing each to the host whose mount root the open
    path is under; records a timeline of changes, the start time of each
    holder (from /proc), its exit time (from a pidfd), and every content
    change of the lease file lease_path."""

    def __init__(self, hosts, file_name, lease_path=None, interval=0.05):
        self.hosts = hosts  # {host name: mount root}
        self.file_name = file_name
        self.lease_path = lease_path
        self.interval = interval
        self.timeline = []    # (ms, {host: sorted pids})
        # pid -> {"host", "start_ms" (from /proc), "first_ms"/"last_ms" (first and
        # last sample holding the file), "gone_ms" (first sample without it),
        # "exit_ms" (the process ended, from its pidfd)}
        self.holders = {}
        self.leases = []      # (ms, parsed lease or None)
        self._pidfds = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._scan_loop, daemon=True),
                         threading.Thread(target=self._exit_loop, daemon=True)]
        for t in self._threads:
            t.start()

    def _host_of(self, target):
        for name, root in self.hosts.items():
            if target.startswith(root + "/"):
                return name
        return "?"

    def _scan(self):
        seen = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/comm" % pid) as f:
                    if f.read().strip() not in VMM_COMMS:
                        continue
                for fd in os.listdir("/proc/%s/fd" % pid):
                    t = os.readlink("/proc/%s/fd/%s" % (pid, fd))
                    if os.path.basename(t.replace(" (deleted)", "")) == self.file_name:
                        seen[int(pid)] = self._host_of(t)
                        break
            except OSError:
                continue
        return seen

    def _record(self, seen, t):
        for pid, host in seen.items():
            h = self.holders.get(pid)
            if h is None:
                try:
                    start = _proc_start_ms(pid)
                    fd = os.pidfd_open(pid)
                except OSError:
                    continue
                h = self.holders[pid] = {"host": host, "start_ms": start, "first_ms": t,
                                         "last_ms": t, "gone_ms": None, "exit_ms": None}
                self._pidfds[fd] = pid
            h["last_ms"] = t
            h["gone_ms"] = None
        for pid, h in self.holders.items():
            if pid not in seen and h["gone_ms"] is None:
                h["gone_ms"] = t  # the first sample without it
        by_host = {}
        for pid, host in seen.items():
            by_host.setdefault(host, []).append(pid)
        by_host = {k: sorted(v) for k, v in by_host.items()}
        if not self.timeline or self.timeline[-1][1] != by_host:
            self.timeline.append((t, by_host))

    def _read_lease(self, t):
        if not self.lease_path:
            return
        try:
            with open(self.lease_path) as f:
                text = f.read()
            lease = json.loads(text) if text.strip() else {"torn": text}
        except FileNotFoundError:
            lease = None
        except (OSError, ValueError) as e:
            lease = {"unreadable": str(e)}
        if not self.leases or self.leases[-1][1] != lease:
            self.leases.append((t, lease))

    def _scan_loop(self):
        while not self._stop.is_set():
            t = now_ms()
            seen = self._scan()
            with self._lock:
                self._record(seen, t)
                self._read_lease(t)
            time.sleep(self.interval)

    def _exit_loop(self):
        while not self._stop.is_set():
            with self._lock:
                fds = dict(self._pidfds)
            p = select.poll()
            for fd in fds:
                p.register(fd, select.POLLIN)
            for fd, _ in p.poll(20) if fds else []:
                t = now_ms()
                with self._lock:
                    self.holders[fds[fd]]["exit_ms"] = t
                    del self._pidfds[fd]
                os.close(fd)
            if not fds:
                time.sleep(0.02)

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        for fd in list(self._pidfds):
            os.close(fd)
        self._pidfds.clear()

    # -- analysis -------------------------------------------------------
    def overlaps(self):
        """Samples in which VMMs of more than one host had the file open."""
        with self._lock:
            return [(t, h) for t, h in self.timeline if len(h) > 1]

    def of_host(self, host):
        with self._lock:
            return [dict(h, pid=p) for p, h in self.holders.items() if h["host"] == host]

    def lease_records(self, host_name=None):
        with self._lock:
            return [(t, l) for t, l in self.leases if l and "expires_at_ms" in l
                    and (host_name is None or l.get("host_name") == host_name)]


# -- the cluster -----------------------------------------------------------

# A guest that appends a numbered line to /ticks and syncs every 0.5 s until
# it is killed; on boot it reports how many ticks it found.
LOOPER_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
n=0
[ -f /ticks ] && n=$(wc -l < /ticks)
echo "NQRUST-TICKER-START $n"
while true; do
	n=$((n+1))
	echo "tick $n" >> /ticks && sync && echo "NQRUST-TICK $n"
	sleep 0.5
done
"""


def make_images(demo_dir, out_dir):
    """demo.* from the cache and looper.* (LOOPER_INIT as /sbin/init)."""
    for f in ("demo.ext4", "demo.vmlinuz", "demo.initrd"):
        run(["cp", "--sparse=always", os.path.join(demo_dir, f), out_dir])
    img = os.path.join(out_dir, "looper.ext4")
    run(["cp", "--sparse=always", os.path.join(out_dir, "demo.ext4"), img])
    for ext in ("vmlinuz", "initrd"):
        shutil.copy(os.path.join(out_dir, "demo." + ext),
                    os.path.join(out_dir, "looper." + ext))
    init = os.path.join(out_dir, "looper-init")
    with open(init, "w") as f:
        f.write(LOOPER_INIT)
    for cmd in ("rm /sbin/init", "write %s /sbin/init" % init, "sif /sbin/init mode 0100755"):
        run(["/usr/sbin/debugfs", "-w", "-R", cmd, img])
    os.unlink(init)


def _manager_knows(flag):
    r = subprocess.run([build_path("nqrust-manager"), "--help"], capture_output=True,
                       text=True)
    return flag in r.stdout + r.stderr


class Cluster:
    """smbd, the local agent, agents a, b, c in namespaces, the manager on
    PostgreSQL; a and b enrolled (c is for the enrollment test). Captures
    run on every namespace's veth from before enrollment to teardown."""

    MEMORY = {"local": 100, "a": 1024, "b": 2048, "c": 1024}

    def __init__(self, pg, demo_dir):
        self.pg = pg
        self.demo_dir = demo_dir
        self.net = None
        self.smbd = None
        self.agents = {}
        self.manager = None
        self.captures = {}
        self.secrets = []      # every token and password used: never on the wire
        self.images = tempfile.mkdtemp(prefix="nqrust-mh-images-")
        self._backend = None

    def start(self):
        self.net = Net().start()
        self.smbd = Smbd(extra_interfaces=[self.net.service_ip]).start()
        self.secrets.append(self.smbd.password)
        make_images(self.demo_dir, self.images)
        self._add_agent("local", None)
        for name in ("a", "b", "c"):
            h = self.net.add_host(name)
            self.captures[name] = Capture(h.root_if)
            self._add_agent(name, h)
        extra = []
        for flag in ("--ha-interval", "--reconcile-interval"):
            if _manager_knows(flag):
                extra += [flag, "1"]
        self.manager = Manager(self.agents["local"], engine="postgres", pg=self.pg,
                               extra_args=extra).start()
        self.secrets.append(self.manager.admin_password)
        for name in ("a", "b"):
            st, h = self.enroll(name, fingerprint=self.agents[name].fingerprint())
            assert st == 201, h
        return self

    def _add_agent(self, name, net_host):
        a = HostAgent("mh-" + name, net_host, memory_mib=self.MEMORY[name])
        self.agents[name] = a  # registered first: cleaned up even if start fails
        for f in os.listdir(self.images):
            run(["cp", "--sparse=always", os.path.join(self.images, f), a.image_dir])
        a.start()
        if a.token:
            self.secrets.append(a.token)

    def enroll(self, name, token=None, fingerprint=None):
        a = self.agents[name]
        body = {"name": a.host_name, "agent_url": a.url, "token": token or a.token}
        if fingerprint:
            body["fingerprint"] = fingerprint
        st, h = self.manager.request("POST", "/v1/hosts", body)
        if st == 201:
            a.host_id = h["id"]
        return st, h

    def host(self, name):
        st, h = self.manager.request("GET", "/v1/hosts/" + self.agents[name].host_id)
        assert st == 200, h
        return h

    def wait_host(self, name, status, timeout=60):
        h = wait_for(lambda: self.host(name)["status"] == status and self.host(name),
                     timeout=timeout, interval=0.3)
        assert h, "host %s never %s: %s" % (name, status, self.host(name))
        return h

    def backend(self):
        """The module's backend on the guest share (created once)."""
        if self._backend is None:
            st, b = self.manager.create_backend("mh-guest", self.smb_config("guest"))
            assert st == 201, b
            self._backend = b
        return self._backend

    def smb_config(self, share, user=False):
        cfg = {"server": self.net.service_ip, "share": share,
               "mount_options": "port=%d" % self.smbd.port}
        if user:
            cfg.update(username=self.smbd.user, password=self.smbd.password)
        return cfg

    def create_vm(self, name, image="demo.ext4", backend_id=None, host=None, **kw):
        body = {"name": name, "vcpus": 1, "memory_mib": 256, "image_id": image,
                "storage_backend_id": backend_id or self.backend()["id"]}
        if host:
            body["host_id"] = self.agents[host].host_id
        body.update(kw)
        return self.manager.request("POST", "/v1/vms", body)

    def vm(self, vm_id):
        st, vm = self.manager.request("GET", "/v1/vms/" + vm_id)
        assert st == 200, vm
        return vm

    def agent_of(self, vm):
        for a in self.agents.values():
            if a.host_id == vm["host_id"]:
                return a
        raise AssertionError("VM on unknown host %r" % vm.get("host_id"))

    def backing(self, vm, share="guest"):
        """The VM's disk file as smbd serves it (the share's directory)."""
        return os.path.join(self.smbd.shares[share], os.path.basename(vm["volume"]["path"]))

    def lease_path(self, vm, share="guest"):
        vid = vm.get("volume_id") or vm["volume"]["id"]
        return os.path.join(os.path.dirname(self.backing(vm, share)), ".smb-%s.lease" % vid)

    def watcher(self, vm, share="guest"):
        roots = {name: a.mount_root for name, a in self.agents.items()}
        return VmmWatcher(roots, os.path.basename(vm["volume"]["path"]),
                          self.lease_path(vm, share))

    def boot_until_poweroff(self, vm_id, timeout=300):
        """The serial log of the demo guest's boot once it powered off."""
        def off():
            vm = self.vm(vm_id)
            assert vm["state"] in ("provisioning", "running", "stopped"), vm
            out = self.agent_of(vm).serial(vm_id)
            return vm["state"] == "stopped" and "NQRUST-POWEROFF" in out and out
        out = wait_for(off, timeout=timeout, interval=0.5)
        assert out, self.agent_of(self.vm(vm_id)).serial(vm_id)[-3000:]
        return out

    def delete_vm(self, vm_id):
        st, body = self.manager.request("DELETE", "/v1/vms/" + vm_id)
        assert st == 204, body

    def stop(self):
        errors = []

        def attempt(fn, *a):
            try:
                fn(*a)
            except Exception as e:  # keep tearing down; report at the end
                errors.append(repr(e))
        for name, h in (self.net.hosts.items() if self.net else []):
            if h.partitioned:
                attempt(self.net.heal, name)
            if h.share_blocked:
                attempt(self.net.block_share, name, False)
        keep = os.environ.get("NQRUST_MH_KEEP_LOGS")  # a directory for the daemons' logs
        if keep:
            os.makedirs(keep, exist_ok=True)
            for n, d in [("manager", self.manager)] + list(self.agents.items()):
                if d:
                    attempt(shutil.copy, d.log_path, os.path.join(keep, n + ".log"))
        from fixtures_vm import kill_vmms  # late: it is a plugin loaded after this one
        for a in self.agents.values():
            attempt(kill_vmms, a)
        if self.manager:
            attempt(self.manager.cleanup)
        for a in self.agents.values():
            attempt(a.cleanup)
        for c in self.captures.values():
            attempt(c.stop)
        if self.smbd:
            attempt(self.smbd.stop)
        if self.net:
            attempt(self.net.cleanup)
        shutil.rmtree(self.images, ignore_errors=True)
        assert not errors, "teardown: " + "; ".join(errors)


@pytest.fixture(scope="module")
def mh_demo_image():
    """The demo guest image (scripts/demo-image.sh, cached)."""
    if not os.access(QEMU, os.X_OK):
        pytest.fail("qemu-system-x86 is not installed (scripts/deps.sh test)")
    p = subprocess.run([os.path.join(REPO, "scripts", "demo-image.sh"), DEMO_CACHE],
                       capture_output=True, text=True, timeout=900)
    if p.returncode == 3:
        pytest.skip("demo image cannot be built here: " + p.stderr.strip())
    assert p.returncode == 0, p.stderr
    return DEMO_CACHE


@pytest.fixture(scope="module")
def multihost(pg_cluster, mh_demo_image):
    c = Cluster(pg_cluster, mh_demo_image)
    try:
        c.start()
        yield c
    finally:
        c.stop()
