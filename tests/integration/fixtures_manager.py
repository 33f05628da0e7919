"""pytest fixtures that run the real nqrust-manager against the real agent,
on SQLite or on a throwaway PostgreSQL (parametrised: every test that uses
`manager` runs on both engines)."""

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

from fixtures_agent import build_path

# Unique and hostile, so "appears nowhere" checks are meaningful.
ADMIN_PASSWORD = "Adm1n p,a=s's\"w$ " + uuid.uuid4().hex[:10]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Manager:
    def __init__(self, agent, engine="sqlite", pg=None, extra_args=(),
                 admin_password=ADMIN_PASSWORD):
        self.agent = agent
        self.engine = engine
        self.pg = pg
        self.root = tempfile.mkdtemp(prefix="nqrust-manager-")
        self.state_dir = os.path.join(self.root, "state")
        self.log_path = os.path.join(self.root, "manager.log")
        self.stdout_path = os.path.join(self.root, "manager.stdout")
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.extra_args = list(extra_args)
        self.admin_password = admin_password
        self.db_name = None
        if engine == "postgres":
            self.db_name = pg.new_database()
            self.database = pg.url(self.db_name)
        else:
            self.database = "sqlite:" + os.path.join(self.state_dir, "manager.db")
        self.proc = None
        self.token = None
        self.replies = []  # every reply body, for the leak checks

    def args(self):
        return [build_path("nqrust-manager"), "--listen", "127.0.0.1:%d" % self.port,
                "--state-dir", self.state_dir, "--database", self.database,
                "--agent", "unix:" + self.agent.socket, "--refresh-interval", "1",
                "--status-timeout-ms", "1000", "--call-timeout-ms", "30000",
                "--log-level", "debug"] + self.extra_args

    def start(self):
        env = dict(os.environ)
        if self.admin_password is not None:
            env["NQRUST_ADMIN_PASSWORD"] = self.admin_password
        else:
            env.pop("NQRUST_ADMIN_PASSWORD", None)
        log = open(self.log_path, "ab")
        out = open(self.stdout_path, "ab")
        try:
            self.proc = subprocess.Popen(self.args(), stdout=out, stderr=log,
                                         stdin=subprocess.DEVNULL, env=env)
        finally:
            log.close()
            out.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("manager exited %d:\n%s" % (self.proc.returncode,
                                                              self.log()))
            try:
                if self.request("GET", "/healthz", auth=False)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("manager did not start:\n" + self.log())

    def stop(self):
        rc = 0
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                rc = -9
        elif self.proc:
            rc = self.proc.returncode
        self.proc = None
        return rc

    def restart(self):
        rc = self.stop()
        assert rc == 0, "manager exited %s on SIGTERM:\n%s" % (rc, self.log())
        self.start()
        self.token = None
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def raw(self, method, path, body=None, headers=None, data=None, timeout=120):
        """(status, parsed JSON or None, headers dict)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
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
        self.replies.append(text)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode(errors="replace")
        return resp.status, parsed, rh

    def login(self, username="admin", password=None):
        st, body, _ = self.raw("POST", "/v1/auth/login",
                               {"username": username,
                                "password": password or self.admin_password})
        assert st == 200, (st, body)
        self.token = body["token"]
        return body

    def request(self, method, path, body=None, auth=True, timeout=120):
        hdrs = {}
        if auth:
            if self.token is None:
                self.login()
            hdrs["Authorization"] = "Bearer " + self.token
        st, parsed, _ = self.raw(method, path, body, headers=hdrs, timeout=timeout)
        return st, parsed

    # Helpers for the storage API.
    def backends(self):
        st, body = self.request("GET", "/v1/storage/backends")
        assert st == 200, (st, body)
        return {b["name"]: b for b in body}

    def create_backend(self, name, config, kind="smb", **extra):
        body = {"name": name, "kind": kind, "config": config}
        body.update(extra)
        return self.request("POST", "/v1/storage/backends", body)

    def db_files(self):
        if self.engine != "sqlite":
            return []
        return [os.path.join(self.state_dir, f) for f in os.listdir(self.state_dir)
                if f.startswith("manager.db")]

    def db_bytes(self):
        """Everything the database holds, as bytes (files or a dump)."""
        parts = []
        if self.engine == "sqlite":
            files = self.db_files()
        else:
            parts.append(self.pg.dump(self.db_name))
            files = self.pg.data_files()
        for f in files:
            try:
                with open(f, "rb") as fh:
                    parts.append(fh.read())
            except OSError:
                if self.engine == "sqlite":
                    raise
        return b"".join(parts)  # one copy: += on bytes would be quadratic

    def cleanup(self):
        self.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", self.root], check=False)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request):
    return request.param


@pytest.fixture
def manager_factory(engine, agent, request):
    made = []

    def make(extra_args=(), agent_obj=None, **kw):
        pg = request.getfixturevalue("pg_cluster") if engine == "postgres" else None
        m = Manager(agent_obj or agent, engine=engine, pg=pg, extra_args=extra_args,
                    **kw).start()
        made.append(m)
        return m

    yield make
    for m in made:
        m.cleanup()


@pytest.fixture
def manager(manager_factory):
    return manager_factory()


def smb_config(smbd, share="guest", user=False, password=None, **extra):
    """A backend config for the test smbd (port through mount_options)."""
    cfg = {"server": smbd.host, "share": share,
           "mount_options": "port=%d" % smbd.port}
    if user:
        cfg["username"] = smbd.user
        cfg["password"] = smbd.password if password is None else password
    cfg.update(extra)
    return cfg


def wait_for(pred, timeout=30, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    return pred()
