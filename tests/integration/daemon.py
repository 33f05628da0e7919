"""The one harness for the daemons the integration tests run.

Daemon starts a built program on a private temp dir, waits until it
answers, stops it with SIGTERM (SIGKILL after a deadline), keeps its log,
collects sanitizer reports and removes everything at cleanup. The agent
(fixtures_agent.Agent) and the manager (fixtures_manager.Manager) build on
it; so do the HTTP helpers (over a unix socket or TCP), the polling helper
wait_for, and the mount and process helpers the FUSE tests share."""

import glob
import hashlib
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("NQRUST_BUILD_DIR", os.path.join(REPO, "build"))


def build_path(name):
    path = os.path.join(BUILD_DIR, name)
    if not os.path.exists(path):
        pytest.fail("%s is not built (run make)" % path)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(pred, timeout=30, interval=0.2):
    """pred()'s first true value within timeout seconds, else its last."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()


# -- HTTP ------------------------------------------------------------------

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("agent", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def http_call(conn, method, path, body=None, data=None, headers=None):
    """One request on conn (closed after): (status, body bytes, headers
    with lower-case names). body is sent as JSON, data as is."""
    hdrs = dict(headers or {})
    if body is not None:
        data = json.dumps(body).encode()
        hdrs.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        text = resp.read()
        rh = {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    return resp.status, text, rh


def unix_call(sock_path, method, path, timeout=120, **kw):
    return http_call(UnixHTTPConnection(sock_path, timeout=timeout), method, path, **kw)


def tcp_call(port, method, path, timeout=120, **kw):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    return http_call(conn, method, path, **kw)


def bearer(token):
    return {"Authorization": "Bearer " + token} if token else {}


# -- TLS with a pinned certificate (the agent's TCP listener) ---------------

class FingerprintMismatch(ssl.SSLError):
    """The peer's certificate is not the pinned one."""


def fingerprint_of_der(der):
    """SHA-256 of a DER certificate as 32 upper-case hex pairs joined by ':'
    (what `openssl x509 -noout -fingerprint -sha256` prints)."""
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


def normalize_fingerprint(fp):
    """Any case, with or without ':' -> the canonical form."""
    h = fp.replace(":", "").strip().upper()
    return ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def cert_file_fingerprint(path):
    """The fingerprint of the first certificate in a PEM file."""
    with open(path) as f:
        pem = f.read()
    end = "-----END CERTIFICATE-----"
    return fingerprint_of_der(ssl.PEM_cert_to_DER_cert(pem[:pem.index(end) + len(end)]))


def tls_wrap(sock, fingerprint):
    """TLS over a connected socket, no CA check, and the peer certificate's
    SHA-256 compared with fingerprint before anything is sent: on a
    mismatch the socket is closed and FingerprintMismatch raised."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    tls = ctx.wrap_socket(sock)
    got = fingerprint_of_der(tls.getpeercert(binary_form=True))
    if got != normalize_fingerprint(fingerprint):
        tls.close()
        raise FingerprintMismatch("certificate fingerprint %s, expected %s"
                                  % (got, normalize_fingerprint(fingerprint)))
    return tls


def tls_connect(host, port, fingerprint, timeout=30, source=None):
    """A pinned TLS socket to host:port (from source address, if given)."""
    s = socket.create_connection((host, port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    try:
        return tls_wrap(s, fingerprint)
    except BaseException:
        s.close()
        raise


class PinnedHTTPSConnection(http.client.HTTPConnection):
    """HTTPS to an agent whose certificate is pinned by fingerprint."""

    def __init__(self, host, port, fingerprint, timeout=30, source_address=None):
        super().__init__(host, port, timeout=timeout, source_address=source_address)
        self.fingerprint = fingerprint

    def connect(self):
        super().connect()
        self.sock = tls_wrap(self.sock, self.fingerprint)


def tls_call(host, port, fingerprint, method, path, timeout=120, **kw):
    conn = PinnedHTTPSConnection(host, port, fingerprint, timeout=timeout)
    return http_call(conn, method, path, **kw)


# -- processes -------------------------------------------------------------

def proc_state(pid):
    """The one-letter state of pid (R, S, Z, ...), or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def proc_running(pid):
    """True when pid exists and is not a zombie (an adopted process's
    parent is init, which may be slow to reap it)."""
    return proc_state(pid) not in (None, "Z", "X")


def pids_where(pred):
    """Pids of the processes whose argv (a list of bytes) satisfies pred."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if pred(argv):
            out.append(int(pid))
    return out


def is_smbfs(argv, probes=False):
    """argv is an nqrust-smbfs bridge (or, with probes, a --check probe)."""
    return (os.path.basename(argv[0]) == b"nqrust-smbfs"
            and (probes or b"--check" not in argv))


def _ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
    except OSError:
        return None
    return int(st[st.rindex(")") + 2:].split()[1])


def smbfs_pids(mount_point, live=True):
    """nqrust-smbfs bridges serving mount_point, only the running ones
    when live. A worker the bridge has just forked shows the bridge's
    command line until it renames itself: a child of a bridge is not one."""
    mp = mount_point.encode()
    pids = pids_where(lambda a: is_smbfs(a) and len(a) > 2 and a[2] == mp)
    return [p for p in pids if (not live or proc_running(p)) and _ppid(p) not in pids]


# -- mounts ----------------------------------------------------------------

def _mountinfo_lines():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.rstrip("\n").split(" - ", 1)
            fields = left.split(" ")
            yield fields[4].encode().decode("unicode_escape"), fields[5], right


def mountinfo(path):
    """(fstype, source, options) of the topmost mount at path, or None."""
    found = None
    for mp, opts, right in _mountinfo_lines():
        if mp == path:
            fstype, source = right.split(" ", 2)[:2]
            found = (fstype, source, opts)
    return found


def mounts_under(root):
    """Mount points at or below root."""
    return [mp for mp, _, _ in _mountinfo_lines() if mp == root or mp.startswith(root + "/")]


def unmount(path, wait_s=10):
    """Unmount path (lazily if busy) and wait for its bridge to exit."""
    if mountinfo(path) is None:
        return
    pids = smbfs_pids(path, live=False)
    r = subprocess.run(["umount", "-c", path], capture_output=True)
    if r.returncode != 0:
        subprocess.run(["umount", "-c", "-l", path], capture_output=True)
    wait_for(lambda: not any(proc_running(p) for p in pids), timeout=wait_s, interval=0.05)


def unmount_all(root):
    """Unmount everything at or below root, deepest first; the bridges
    have exited (and written any sanitizer report) on return."""
    for mp in sorted(mounts_under(root), key=len, reverse=True):
        unmount(mp)


# -- daemons ---------------------------------------------------------------

class Daemon:
    """A daemon on a private temp dir. Subclasses give program, args(),
    ready() and may override before_cleanup()."""

    program = None
    stop_timeout = 20
    check_exit = True          # cleanup() asserts exit 0 on SIGTERM
    separate_stdout = False    # stdout to <name>.stdout, stderr to the log

    def __init__(self, name):
        self.name = name
        self.root = tempfile.mkdtemp(prefix="nqrust-%s-" % name)
        self.log_path = os.path.join(self.root, name + ".log")
        self.stdout_path = os.path.join(self.root, name + ".stdout")
        self.proc = None

    def args(self):
        raise NotImplementedError

    def ready(self):
        raise NotImplementedError

    def env(self):
        env = dict(os.environ)
        # Sanitizer reports (of the daemon and the helpers it spawns, which
        # have no stderr once daemonized) go to files cleanup() checks.
        san = os.path.join(self.root, "sanitizer")
        env["ASAN_OPTIONS"] = "detect_leaks=1:fast_unwind_on_malloc=0:log_path=" + san
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:log_path=" + san
        return env

    def start(self, timeout=20):
        with open(self.log_path, "ab") as log:
            out = open(self.stdout_path, "ab") if self.separate_stdout else log
            try:
                self.proc = subprocess.Popen(self.args(), stdout=out, stderr=log,
                                             stdin=subprocess.DEVNULL, env=self.env())
            finally:
                if out is not log:
                    out.close()
        return self.wait_ready(timeout)

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited %d:\n%s" % (self.name, self.proc.returncode,
                                                         self.log()))
            try:
                if self.ready():
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("%s did not start:\n%s" % (self.name, self.log()))

    def stop(self):
        """SIGTERM, SIGKILL after stop_timeout; the exit status."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc

    def restart(self):
        rc = self.stop()
        assert rc == 0, "%s exited %s on SIGTERM:\n%s" % (self.name, rc, self.log())
        return self.start()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def sanitizer_reports(self):
        out = []
        for p in glob.glob(os.path.join(self.root, "sanitizer.*")):
            with open(p, errors="replace") as f:
                text = f.read()
            # A bare "Suppressions used" summary (smbfs suppresses one known
            # leak inside libsmbclient's startup) is not a report.
            if "ERROR:" in text or "runtime error" in text:
                out.append(text)
        return out

    def before_cleanup(self):
        """After the stop, before the reports are read (say, unmounts)."""

    def cleanup(self):
        rc = self.stop()
        self.before_cleanup()
        reports = self.sanitizer_reports()
        log = self.log()
        subprocess.run(["rm", "-rf", "--one-file-system", self.root], check=False)
        assert not reports, "sanitizer reports:\n" + "\n".join(reports)
        assert rc == 0 or not self.check_exit, \
            "%s exited %s on SIGTERM:\n%s" % (self.name, rc, log[-4000:])
