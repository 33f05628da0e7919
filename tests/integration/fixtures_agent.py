"""pytest fixtures that run the real nqrust-agent on temp dirs.

Every path the agent uses (socket, cred dir, mount root, image dir, state
dir) lives under one private temp dir, so several runs side by side never
collide and nothing under /etc, /var or /run is touched. Start, stop,
logs and sanitizer checks are daemon.Daemon's."""

import json
import os
import uuid

import pytest

# Re-exported: tests import these from here.
from daemon import (REPO, Daemon, UnixHTTPConnection, bearer, build_path,  # noqa: F401
                    free_port, mounts_under, tcp_call, unix_call, unmount_all)


def _json(text):
    return json.loads(text) if text else None


class Agent(Daemon):
    """A running nqrust-agent. request() speaks HTTP over its unix socket,
    tcp_request() over --listen-tcp (tcp=True, with a bearer token)."""

    def __init__(self, driver="fuse", probe_timeout=10, extra_args=(), tcp=False):
        super().__init__("agent")
        os.chmod(self.root, 0o755)
        self.socket = os.path.join(self.root, "run", "agent.sock")
        self.cred_dir = os.path.join(self.root, "creds")
        self.mount_root = os.path.join(self.root, "lib")
        self.mount_base = os.path.join(self.mount_root, "smb")
        self.image_dir = os.path.join(self.root, "images")
        self.state_dir = os.path.join(self.root, "state")
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
            self.tcp_port = free_port()

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

    def ready(self):
        return self.request("GET", "/healthz")[0] == 200

    def request(self, method, path, body=None, raw=None, headers=None, timeout=120):
        st, text, _ = unix_call(self.socket, method, path, timeout=timeout, body=body,
                                data=raw, headers=headers)
        return st, _json(text)

    def tcp_request(self, method, path, token=None, body=None):
        st, text, _ = tcp_call(self.tcp_port, method, path, timeout=30, body=body,
                               headers=bearer(token))
        return st, _json(text)

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

    def before_cleanup(self):
        unmount_all(self.mount_root)  # FUSE bridges exit and report


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
