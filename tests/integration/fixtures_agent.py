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
from daemon import (REPO, Daemon, FingerprintMismatch, PinnedHTTPSConnection,  # noqa: F401
                    UnixHTTPConnection, bearer, build_path, cert_file_fingerprint,
                    fingerprint_of_der, free_port, mounts_under, normalize_fingerprint,
                    tls_call, tls_connect, unix_call, unmount_all)


def _json(text):
    return json.loads(text) if text else None


class Agent(Daemon):
    """A running nqrust-agent. request() speaks HTTP over its unix socket;
    with tcp=True it also listens on TCP (always TLS) with a bearer token,
    and tls_request() speaks HTTPS there, pinning the certificate by
    tls_fingerprint (SHA-256, read from the certificate file at start:
    tls_cert/tls_key when given, else the pair the agent generated in
    <state_dir>/tls). listen_host is the TCP address (say, a netns veth)."""

    def __init__(self, driver="fuse", probe_timeout=10, extra_args=(), tcp=False,
                 tls_cert=None, tls_key=None, listen_host="127.0.0.1", tcp_port=None):
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
        self.listen_host = listen_host
        self.tls_cert = tls_cert
        self.tls_key = tls_key
        self.tls_fingerprint = None
        if tcp:
            self.token = uuid.uuid4().hex + uuid.uuid4().hex
            self.token_file = os.path.join(self.root, "token")
            fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, self.token.encode() + b"\n")
            os.close(fd)
            self.tcp_port = tcp_port or free_port()

    @property
    def tls_cert_path(self):
        """The certificate the TCP listener presents."""
        return self.tls_cert or os.path.join(self.state_dir, "tls", "agent-cert.pem")

    def wait_ready(self, timeout=20):
        super().wait_ready(timeout)
        if self.tcp_port:
            self.tls_fingerprint = cert_file_fingerprint(self.tls_cert_path)
        return self

    def args(self):
        a = [build_path("nqrust-agent"),
             "--listen-unix", self.socket, "--cred-dir", self.cred_dir,
             "--mount-root", self.mount_root, "--image-dir", self.image_dir,
             "--state-dir", self.state_dir, "--mount-driver", self.driver,
             "--probe-timeout", str(self.probe_timeout),
             "--smbfs-path", build_path("nqrust-smbfs"), "--log-level", "debug"]
        if self.tcp_port:
            host = "[%s]" % self.listen_host if ":" in self.listen_host else self.listen_host
            a += ["--listen-tcp", "%s:%d" % (host, self.tcp_port),
                  "--token-file", self.token_file]
        if self.tls_cert:
            a += ["--tls-cert", self.tls_cert, "--tls-key", self.tls_key]
        return a + self.extra_args

    def ready(self):
        return self.request("GET", "/healthz")[0] == 200

    def request(self, method, path, body=None, raw=None, headers=None, timeout=120):
        st, text, _ = unix_call(self.socket, method, path, timeout=timeout, body=body,
                                data=raw, headers=headers)
        return st, _json(text)

    def tls_request(self, method, path, token=None, body=None, fingerprint=None,
                    timeout=30):
        """HTTPS on the TCP listener, the certificate pinned (fingerprint,
        default tls_fingerprint; FingerprintMismatch when it differs)."""
        st, text, _ = tls_call(self.listen_host, self.tcp_port,
                               fingerprint or self.tls_fingerprint, method, path,
                               timeout=timeout, body=body, headers=bearer(token))
        return st, _json(text)

    # The TCP listener speaks only TLS.
    tcp_request = tls_request

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
