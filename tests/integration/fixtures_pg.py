"""A throwaway PostgreSQL 15 cluster for the manager tests (TESTING.md).

initdb refuses root, so the cluster runs as `nobody` under a private temp
dir that also holds the unix socket; nothing listens on TCP. One cluster per
test session; each manager gets its own fresh database (new_database)."""

import os
import pwd
import shutil
import subprocess
import tempfile
import uuid

import pytest

PG_BIN = os.environ.get("NQRUST_PG_BIN", "/usr/lib/postgresql/15/bin")
PG_USER = "nqrust"


class PgCluster:
    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="nqrust-pg-")
        nobody = pwd.getpwnam("nobody")
        os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
        os.chmod(self.root, 0o755)
        self.data = os.path.join(self.root, "data")
        self.sock_dir = self.root
        self.log_path = os.path.join(self.root, "postgres.log")
        self.started = False

    def _as_nobody(self, argv, **kw):
        return subprocess.run(["/usr/sbin/runuser", "-u", "nobody", "--"] + argv,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              check=True, cwd=self.root, **kw)

    def start(self):
        self._as_nobody([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", PG_USER,
                         "--auth=trust", "--no-sync", "-E", "UTF8"])
        self._as_nobody([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w",
                         "-l", self.log_path, "-o",
                         "-k %s -c listen_addresses='' -c fsync=off" % self.sock_dir,
                         "start"])
        self.started = True
        return self

    def stop(self):
        if self.started:
            subprocess.run(["/usr/sbin/runuser", "-u", "nobody", "--",
                            os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-w",
                            "-m", "fast", "stop"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           check=False)
            self.started = False
        shutil.rmtree(self.root, ignore_errors=True)

    def psql(self, db, sql):
        r = subprocess.run([os.path.join(PG_BIN, "psql"), "-h", self.sock_dir, "-U",
                            PG_USER, "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=True)
        return r.stdout.decode()

    def new_database(self):
        name = "nq_" + uuid.uuid4().hex[:12]
        self.psql("postgres", "CREATE DATABASE %s" % name)
        return name

    def url(self, db):
        return "postgres:///%s?host=%s&user=%s" % (db, self.sock_dir, PG_USER)

    def dump(self, db):
        r = subprocess.run([os.path.join(PG_BIN, "pg_dump"), "-h", self.sock_dir, "-U",
                            PG_USER, db], stdout=subprocess.PIPE, check=True)
        return r.stdout

    def data_files(self):
        for d, _, files in os.walk(self.data):
            for f in files:
                yield os.path.join(d, f)


@pytest.fixture(scope="session")
def pg_cluster():
    c = PgCluster().start()
    yield c
    c.stop()
