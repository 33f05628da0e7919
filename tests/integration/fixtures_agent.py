"""pytest fixtures that run the real nqrust-agent on temp dirs.

Every path the agent uses (socket, cred dir, mount root, image dir, state
dir) lives under one private temp dir, so several runs side by side never
collide and nothing under /etc, /var or /run is touched.
"""

import glob
import http.client
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("NQRUST_BUILD_DIR", os.path.join(REPO, "build"))


def build_path(name):
    path = os.path.join(BUILD_DIR, name)
    if not os.path.exists(path):
        pytest.fail("%s is not built (run make)" % path)
    return path


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=120):
        super().__init__("agent", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def mounts_under(root):
    """Mount points at or below root, from /proc/self/mountinfo."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split(" ")[4].encode().decode("unicode_escape")
            if mp == root or mp.startswith(root + "/"):
                out.append(mp)
    return out


def unmount_all(root):
    for mp in sorted(mounts_under(root), key=len, reverse=True):
        subprocess.run(["/bin/umount", "-c", mp], stderr=subprocess.DEVNULL, check=False)
        if mp in mounts_under(root):
            subprocess.run(["/bin/umount", "-c", "-l", mp], stderr=subprocess.DEVNULL,
                           check=False)


class Agent:
    """A running nqrust-agent. request() speaks HTTP over its unix socket."""

    def __init__(self, driver="fuse", probe_timeout=10, extra_args=(), tcp=False):
        self.root = tempfile.mkdtemp(prefix="nqrust-agent-")
        os.chmod(self.root, 0o755)
        self.socket = os.path.join(self.root, "run", "agent.sock")
        self.cred_dir = os.path.join(self.root, "creds")
        self.mount_root = os.path.join(self.root, "lib")
        self.mount_base = os.path.join(self.mount_root, "smb")
        self.image_dir = os.path.join(self.root, "images")
        self.state_dir = os.path.join(self.root, "state")
        self.log_path = os.path.join(self.root, "agent.log")
        os.makedirs(self.image_dir)
        self.driver = driver
        self.probe_timeout = probe_timeout
        self.extra_args = list(extra_args)
        self.token = None
        self.tcp_port = None
        if tcp:
            self.token = uuid.uuid4().hex + uuid.uuid4().hex
            self.token_file = os.path.join(self.root, "token")
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, self.token.encode() + b"\n")
            os.close(fd)
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            self.tcp_port = s.getsockname()[1]
            s.close()
        self.proc = None
        self._log = None

    def args(self):
        a = [build_path("nqrust-agent"),
             "--listen-unix", self.socket, "--cred-dir", self.cred_dir,
             "--mount-root", self.mount_root, "--image-dir", self.image_dir,
             "--state-dir", self.state_dir, "--mount-driver", self.driver,
             "--probe-timeout", str(self.probe_timeout),
             "--smbfs-path", build_path("nqrust-smbfs"), "--log-level", "debug"]
        if self.tcp_port:
            a += ["--listen-tcp", "127.0.0.1:%d" % self.tcp_port,
                  "--token-file", self.token_file]
        return a + self.extra_args

    def start(self):
        self._log = open(self.log_path, "ab")
        env = dict(os.environ)
        # Sanitizer reports (agent and the helpers it spawns, which have no
        # stderr once daemonized) go to files that cleanup() checks.
        san = os.path.join(self.root, "sanitizer")
        env["ASAN_OPTIONS"] = "detect_leaks=1:fast_unwind_on_malloc=0:log_path=" + san
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:log_path=" + san
        self.proc = subprocess.Popen(self.args(), stdout=self._log, stderr=self._log,
                                     stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("agent exited %d:\n%s" % (self.proc.returncode,
                                                            self.log()))
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("agent did not start:\n" + self.log())

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log:
            self._log.close()
            self._log = None
        rc = self.proc.returncode if self.proc else 0
        self.proc = None
        return rc

    def restart(self):
        rc = self.stop()
        assert rc == 0, "agent exited %s on SIGTERM:\n%s" % (rc, self.log())
        return self.start()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def request(self, method, path, body=None, raw=None, headers=None, timeout=120):
        conn = UnixHTTPConnection(self.socket, timeout=timeout)
        hdrs = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read()
        finally:
            conn.close()
        return resp.status, (json.loads(text) if text else None)

    def tcp_request(self, method, path, token=None, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.tcp_port, timeout=30)
        hdrs = {}
        if token:
            hdrs["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            text = resp.read()
        finally:
            conn.close()
        return resp.status, (json.loads(text) if text else None)

    # Convenience wrappers for the §6 contract.
    def put_creds(self, backend_id, username, password, domain=None):
        body = {"username": username, "password": password}
        if domain:
            body["domain"] = domain
        return self.request("PUT", "/v1/storage/smb/credentials/" + backend_id, body)

    def mount(self, **body):
        return self.request("POST", "/v1/storage/smb/mounts", body)

    def mounts(self):
        return mounts_under(self.mount_root)

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

    def cleanup(self):
        rc = self.stop()
        unmount_all(self.mount_root)  # lets FUSE daemons exit and report
        time.sleep(0.3)
        reports = self.sanitizer_reports()
        log = self.log()
        subprocess.run(["rm", "-rf", "--one-file-system", self.root], check=False)
        assert not reports, "sanitizer reports:\n" + "\n".join(reports)
        assert rc == 0, "agent exited %s on SIGTERM:\n%s" % (rc, log[-4000:])


def new_id():
    return str(uuid.uuid4())


@pytest.fixture
def agent():
    a = Agent().start()
    yield a
    a.cleanup()


@pytest.fixture
def agent_factory():
    made = []

    def make(**kw):
        a = Agent(**kw).start()
        made.append(a)
        return a

    yield make
    for a in made:
        a.cleanup()


@pytest.fixture(scope="session")
def agent_session():
    a = Agent().start()
    yield a
    a.cleanup()
