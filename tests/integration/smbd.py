"""Throwaway Samba servers for integration tests (stdlib only).

Facts this relies on are in /work/shared/TESTING.md:
- every Samba directory is redirected into a private temp dir, so nothing
  under /etc, /var or /run is touched and instances run side by side;
- smbd runs in the foreground WITHOUT --no-process-group and WITHOUT
  setsid (smbd leads its own process group); it is stopped by SIGTERM to
  that group, reaped as our child, and samba-dcerpcd (which outlives smbd)
  is stopped through its pid file.

Usage:
    with Smbd() as s:
        s.host, s.port, s.shares["guest"], s.user, s.password
    with SilentServer() as port: ...
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

SMBD = os.environ.get("NQRUST_SMBD", "/usr/sbin/smbd")
SMBPASSWD = os.environ.get("NQRUST_SMBPASSWD", "/usr/bin/smbpasswd")
USERADD = "/usr/sbin/useradd"

TEST_USER = "nqrusttest"
# Hostile on purpose: the characters mount option parsers, shells and
# quoting layers get wrong.
TEST_PASSWORD = "p,a=s's\"w$ rd 1"

START_TIMEOUT = 15.0
PORT_TRIES = 5


def free_port(host="127.0.0.1"):
    """A loopback TCP port that was free a moment ago (bind to port 0)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _user_exists(user):
    try:
        import pwd

        pwd.getpwnam(user)
        return True
    except KeyError:
        return False


def ensure_unix_user(user=TEST_USER):
    """Create a no-login, no-home Unix user if missing. Idempotent and safe
    when two test runs race (useradd's lock or "already exists" failures
    are retried and then re-checked)."""
    for _ in range(20):
        if _user_exists(user):
            return
        r = subprocess.run(
            [USERADD, "-M", "-s", "/usr/sbin/nologin", user],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=False,
        )
        if r.returncode == 0 or _user_exists(user):
            return
        # 9 = exists (someone else won), 10 = cannot lock passwd: retry.
        time.sleep(0.2)
    raise RuntimeError("could not create unix user %s" % user)


def _port_open(host, port, timeout=0.2):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect((host, port))
            return True
    except OSError:
        return False


def _pid_is(pid, name):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return name.encode() in f.read()
    except OSError:
        return False


class Smbd:
    """A private smbd on a free loopback port.

    Shares (backing directories in `shares`):
      guest    - guest-writable (map to guest = Bad User, force user = root)
      secure   - only `user` with `password`, writable
      readonly - read only, guest ok
    """

    def __init__(self, max_protocol=None, min_protocol="SMB2_02",
                 ipv6=True, user=TEST_USER, password=TEST_PASSWORD,
                 base_dir=None, audit=False, extra_interfaces=()):
        # extra_interfaces: addresses smbd also listens on (say, the root
        # side of the test's veth pairs); the default is loopback only.
        self.extra_interfaces = list(extra_interfaces)
        # audit=True: smbd logs every server-side fsync and write
        # (full_audit VFS module) to its log as
        # "audit|CLIENT_IP|DATE TIME|fsync_send|ok|PATH" (audit_records:
        # who wrote, and in which second), and every SMB2
        # request as "opcode[SMB2_OP_...]".
        self.audit = audit
        self.max_protocol = max_protocol
        self.min_protocol = min_protocol
        self.ipv6 = ipv6
        self.user = user
        self.password = password
        self.host = "127.0.0.1"
        self.port = None
        self.proc = None
        self._own_dir = base_dir is None
        self.dir = base_dir or tempfile.mkdtemp(prefix="nqrust-smbd-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "smb.conf")
        self.log_path = os.path.join(self.dir, "smbd.stdout")
        self.shares = {}
        for name in ("guest", "secure", "readonly"):
            path = os.path.join(self.dir, "shares", name)
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o777 if name != "readonly" else 0o755)
            self.shares[name] = path
        for d in ("private", "lock", "state", "cache", "pid", "ncalrpc",
                  "log", "usershares"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)

    # -- configuration -------------------------------------------------
    def _write_conf(self):
        d = self.dir
        ifaces = " ".join(["127.0.0.1"] + (["::1"] if self.ipv6 else [])
                          + self.extra_interfaces)
        lines = [
            "[global]",
            "workgroup = WORKGROUP",
            "server role = standalone server",
            "interfaces = %s" % ifaces,
            "bind interfaces only = yes",
            "smb ports = %d" % self.port,
            "disable netbios = yes",
            "load printers = no",
            "printcap name = /dev/null",
            "disable spoolss = yes",
            "server min protocol = %s" % self.min_protocol,
            "private dir = %s/private" % d,
            "lock directory = %s/lock" % d,
            "state directory = %s/state" % d,
            "cache directory = %s/cache" % d,
            "pid directory = %s/pid" % d,
            "ncalrpc dir = %s/ncalrpc" % d,
            "usershare path = %s/usershares" % d,
            "log file = %s/log/log.%%m" % d,
            "log level = 1",
            "passdb backend = tdbsam:%s/private/passdb.tdb" % d,
            "map to guest = Bad User",
            "guest account = nobody",
            # A client host cut off by a partition whose bridge then drops
            # its connection (io_deadline's TCP user timeout) never says
            # so: without keepalive smbd would keep that session, and its
            # open handles, for hours (docs/leases.md, "Late writes").
            "socket options = TCP_NODELAY SO_KEEPALIVE TCP_KEEPIDLE=5 "
            "TCP_KEEPINTVL=1 TCP_KEEPCNT=3",
        ]
        if self.max_protocol:
            lines.append("server max protocol = %s" % self.max_protocol)
        if self.audit:
            lines[lines.index("log level = 1")] = "log level = 1 smb2:10"
            lines += [
                "vfs objects = full_audit",
                "full_audit:syslog = no",
                "full_audit:success = fsync fsync_send pwrite pwrite_send renameat",
                "full_audit:failure = none",
                "full_audit:prefix = audit|%I|%T",
            ]
        lines += [
            "",
            "[guest]",
            "path = %s" % self.shares["guest"],
            "read only = no",
            "guest ok = yes",
            "force user = root",
            "",
            "[secure]",
            "path = %s" % self.shares["secure"],
            "read only = no",
            "valid users = %s" % self.user,
            "force user = root",
            "",
            "[readonly]",
            "path = %s" % self.shares["readonly"],
            "read only = yes",
            "guest ok = yes",
            "",
        ]
        tmp = self.conf + ".tmp"
        with open(tmp, "w") as f:
            f.write("\n".join(lines))
        os.rename(tmp, self.conf)

    def _add_user(self):
        ensure_unix_user(self.user)
        pw = (self.password + "\n") * 2
        r = subprocess.run(
            [SMBPASSWD, "-c", self.conf, "-s", "-a", self.user],
            input=pw.encode(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            check=False,
        )
        if r.returncode != 0:
            # The password is not in smbpasswd's output; safe to show.
            raise RuntimeError("smbpasswd failed: %s" % r.stderr.decode(errors="replace"))

    # -- lifecycle -----------------------------------------------------
    def start(self):
        last = None
        for _ in range(PORT_TRIES):
            self.port = free_port()
            self._write_conf()
            if not os.path.exists(os.path.join(self.dir, "private", "passdb.tdb")):
                self._add_user()
            try:
                self._spawn_and_wait()
                return self
            except RuntimeError as e:  # port collision or early exit
                last = e
                self._stop_proc()
        raise RuntimeError("smbd did not start: %s" % last)

    def _spawn_and_wait(self):
        log = open(self.log_path, "ab")
        try:
            # No setsid and no --no-process-group: smbd makes itself a
            # process group leader; we stay its parent so we can reap it.
            self.proc = subprocess.Popen(
                [SMBD, "--foreground", "--debug-stdout", "-s", self.conf],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=True,
            )
        finally:
            log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("smbd exited with %s (see %s)"
                                   % (self.proc.returncode, self.log_path))
            if _port_open(self.host, self.port):
                # Make sure it is our smbd that answers, not a racer
                # that took the port: smbd dies if it cannot bind.
                time.sleep(0.05)
                if self.proc.poll() is None:
                    return
            time.sleep(0.03)
        raise RuntimeError("smbd port %d did not open" % self.port)

    def _stop_proc(self):
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            except PermissionError:
                p.terminate()
            # If smbd had not yet made its own group, signal it directly.
            if p.poll() is None:
                try:
                    p.terminate()
                except ProcessLookupError:
                    pass
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except OSError:
                    p.kill()
                p.wait(timeout=10)
        self.proc = None
        self._stop_dcerpcd()

    def _stop_dcerpcd(self):
        pidfile = os.path.join(self.dir, "pid", "samba-dcerpcd.pid")
        try:
            with open(pidfile) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if pid <= 1 or not _pid_is(pid, "samba-dcerpcd"):
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        for _ in range(100):
            if not _pid_is(pid, "samba-dcerpcd"):
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- faults ----------------------------------------------------------
    def _group_signal(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def pause(self):
        """SIGSTOP every smbd process: the port still accepts connections
        (the kernel does), nothing answers."""
        self._group_signal(signal.SIGSTOP)

    def resume(self):
        self._group_signal(signal.SIGCONT)

    def down(self):
        """Stop smbd (connections reset); up() brings it back on the same
        port with the same shares."""
        self.resume()
        self._stop_proc()

    def up(self):
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self._spawn_and_wait()
                return self
            except RuntimeError:
                self._stop_proc()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def restart(self, down_s=0.0):
        self.down()
        time.sleep(down_s)
        return self.up()

    def log_text(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def audit_records(self):
        """[{at, ip, op, path}] of the audit log, in order (audit=True):
        ip = the client's address (%I); at = the wall-clock second (%T,
        local time, truncated: the operation ran in [at, at + 1))."""
        out = []
        for line in self.log_text().splitlines():
            f = line.strip().split("|", 5)
            if len(f) == 6 and f[0] == "audit" and f[4] == "ok":
                at = time.mktime(time.strptime(f[2], "%Y/%m/%d %H:%M:%S"))
                out.append({"at": at, "ip": f[1], "op": f[3], "path": f[5]})
        return out

    def audit_lines(self):
        """[(op, path)] of the audit log, in order (audit=True)."""
        return [(r["op"], r["path"]) for r in self.audit_records()]

    def count_fsyncs(self, path):
        """Server-side fsyncs of the file at backing path (audit=True)."""
        return sum(1 for r in self.audit_records()
                   if r["op"] in ("fsync", "fsync_send") and r["path"] == path)

    def stop(self):
        self.resume() if self.proc else None
        self._stop_proc()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def unc(self, share, host=None):
        return "//%s/%s" % (host or self.host, share)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SilentServer:
    """A loopback TCP listener that accepts connections and never answers
    (an SMB server that hangs). `port` is set after start()."""

    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.sock = None
        self.port = None
        self._conns = []
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        fam = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.bind((self.host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            try:
                c, _ = self.sock.accept()
                self._conns.append(c)  # hold it open, say nothing
            except socket.timeout:
                continue
            except OSError:
                return

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        for c in self._conns:
            c.close()
        self._conns = []
        if self.sock:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
