"""pytest fixtures that run the real nqrust-manager against the real agent,
on SQLite or on a throwaway PostgreSQL (parametrised: every test that uses
`manager` runs on both engines)."""

import json
import os
import uuid

import pytest

# wait_for and free_port are re-exported: tests import them from here.
from daemon import Daemon, build_path, free_port, tcp_call, wait_for  # noqa: F401

# Unique and hostile, so "appears nowhere" checks are meaningful.
ADMIN_PASSWORD = "Adm1n p,a=s's\"w$ " + uuid.uuid4().hex[:10]


class Manager(Daemon):
    """A running nqrust-manager on 127.0.0.1 against agent. Its stdout
    (where it prints a generated admin password) is kept apart from its
    log; cleanup() does not require exit 0 (tests SIGKILL it)."""

    stop_timeout = 30
    check_exit = False
    separate_stdout = True

    def __init__(self, agent, engine="sqlite", pg=None, extra_args=(),
                 admin_password=ADMIN_PASSWORD):
        super().__init__("manager")
        self.agent = agent
        self.engine = engine
        self.pg = pg
        self.state_dir = os.path.join(self.root, "state")
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
        self.token = None
        self.replies = []  # every reply body, for the leak checks

    def args(self):
        return [build_path("nqrust-manager"), "--listen", "127.0.0.1:%d" % self.port,
                "--state-dir", self.state_dir, "--database", self.database,
                "--agent", "unix:" + self.agent.socket, "--refresh-interval", "1",
                "--status-timeout-ms", "1000", "--call-timeout-ms", "30000",
                "--log-level", "debug"] + self.extra_args

    def env(self):
        env = super().env()
        if self.admin_password is not None:
            env["NQRUST_ADMIN_PASSWORD"] = self.admin_password
        else:
            env.pop("NQRUST_ADMIN_PASSWORD", None)
        return env

    def ready(self):
        return self.request("GET", "/healthz", auth=False)[0] == 200

    def restart(self):
        super().restart()
        self.token = None
        return self

    def raw(self, method, path, body=None, headers=None, data=None, timeout=120):
        """(status, parsed JSON or None, headers dict)."""
        st, text, rh = tcp_call(self.port, method, path, timeout=timeout, body=body,
                                data=data, headers=headers)
        self.replies.append(text)
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode(errors="replace")
        return st, parsed, rh

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
