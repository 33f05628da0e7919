"""The nqrust CLI drives the storage scenario against a real manager,
agent and smbd (SQLite and PostgreSQL)."""

import atexit
import json
import os
import shutil
import stat
import subprocess
import tempfile

from fixtures_agent import build_path
from fixtures_manager import ADMIN_PASSWORD


class Cli:
    def __init__(self, manager):
        self.home = tempfile.mkdtemp(prefix="nqrust-cli-")
        atexit.register(shutil.rmtree, self.home, True)  # holds the CLI's token
        self.env = {"PATH": "/usr/bin:/bin", "HOME": self.home,
                    "NQRUST_URL": manager.url}

    def run(self, *args, stdin=None):
        r = subprocess.run([build_path("nqrust")] + list(args), env=self.env,
                           input=stdin.encode() if stdin is not None else None,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           stdin=None if stdin is not None else subprocess.DEVNULL,
                           timeout=120)
        return r.returncode, r.stdout.decode(), r.stderr.decode()

    def json(self, *args, stdin=None):
        rc, out, err = self.run("--json", *args, stdin=stdin)
        assert rc == 0, err
        return json.loads(out)


def test_cli_scenario(manager, agent, smbd):
    cli = Cli(manager)
    rc, out, err = cli.run("backend", "list")
    assert rc == 1 and "401" in err

    rc, out, err = cli.run("login", "--username", "admin", "--password-stdin",
                           stdin="wrong\n")
    assert rc == 1 and "unauthorized" in err
    rc, out, err = cli.run("login", "--username", "admin", "--password-stdin",
                           stdin=ADMIN_PASSWORD + "\n")
    assert rc == 0, err
    tok = os.path.join(cli.home, ".config", "nqrust", "token")
    assert stat.S_IMODE(os.stat(tok).st_mode) == 0o600

    # No way to pass a password in argv.
    rc, out, err = cli.run("backend", "create", "--name", "x", "--password", "zz")
    assert rc == 2 and "zz" not in err

    port = "port=%d" % smbd.port
    rc, out, err = cli.run("backend", "create", "--name", "g", "--server", smbd.host,
                           "--share", "guest", "--mount-options", port)
    assert rc == 0, err
    assert "status:        ok" in out
    rc, out, err = cli.run("backend", "create", "--name", "s", "--server", smbd.host,
                           "--share", "secure", "--username", smbd.user,
                           "--mount-options", port, "--password-stdin",
                           stdin=smbd.password + "\n")
    assert rc == 0, err
    assert "has password:  yes" in out

    # Probe failure and duplicate name: exit 1 with the API's code.
    rc, out, err = cli.run("backend", "create", "--name", "bad", "--server", smbd.host,
                           "--share", "secure", "--username", smbd.user,
                           "--mount-options", port + ",noatime", "--password-stdin",
                           stdin="wrong\n")
    assert rc == 1 and "smb_auth_failed" in err
    rc, out, err = cli.run("backend", "create", "--name", "g", "--server", smbd.host,
                           "--share", "guest", "--mount-options", port)
    assert rc == 1 and "name_taken" in err

    rc, out, err = cli.run("backend", "list")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["NAME", "ID", "KIND", "DEF", "STATUS"]
    rows = {ln.split()[0]: ln for ln in lines[1:]}
    assert set(rows) == {"localfile-default", "g", "s"}
    assert " ok " in rows["g"] and "GiB" in rows["g"] or "MiB" in rows["g"]
    listed = {b["name"]: b for b in cli.json("backend", "list")}
    assert listed["s"]["has_password"] is True

    got = cli.json("backend", "get", "s")
    assert got["config"]["username"] == smbd.user

    rc, out, err = cli.run("backend", "rotate-password", "s", "--password-stdin",
                           stdin=smbd.password + "\n")
    assert rc == 0, err

    vol = cli.json("volume", "create", "--backend", "s", "--size", "2M")
    assert vol["size_bytes"] == 2 << 20
    rc, out, err = cli.run("volume", "list")
    assert rc == 0 and vol["id"] in out
    rc, out, err = cli.run("backend", "delete", "s")
    assert rc == 1 and "backend_in_use" in err and vol["id"] in err
    rc, out, err = cli.run("volume", "delete", vol["id"])
    assert rc == 0, err
    rc, out, err = cli.run("backend", "update", "g", "--default")
    assert rc == 0 and "default:       yes" in out
    rc, out, err = cli.run("backend", "delete", "g")
    assert rc == 1 and "backend_is_default" in err
    rc, out, err = cli.run("backend", "delete", "s")
    assert rc == 0, err
    assert "s" not in {b["name"] for b in cli.json("backend", "list")}

    rc, out, err = cli.run("logout")
    assert rc == 0, err
    rc, out, err = cli.run("backend", "list")
    assert rc == 1 and "401" in err
