"""The `gates` fixture: test pause points in the daemons.

NQRUST_DEBUG_GATE_DIR (src/common/debug_gate.h) names a directory; while
<dir>/<step>.wait exists, a daemon that reaches <step> creates
<step>.reached and holds there until the .wait file is removed (or the
operation is cancelled). Tests pause an operation at an exact step this
way instead of relying on its slowness. The fixture sets the variable
before the daemons start (request `gates` before `agent` or `manager`).
Steps: agent "clone" (the data is in the temp file, nothing final);
manager "backend-created", "vm-cloned", "vm-booted", "vm-migrate-left" (the
VM stopped and forgotten on its host, not yet on the target)."""

import os

import pytest

from daemon import wait_for


class Gates:
    def __init__(self, d):
        self.dir = d

    def arm(self, step):
        try:
            os.unlink(os.path.join(self.dir, step + ".reached"))
        except FileNotFoundError:
            pass
        open(os.path.join(self.dir, step + ".wait"), "w").close()

    def release(self, step):
        try:
            os.unlink(os.path.join(self.dir, step + ".wait"))
        except FileNotFoundError:
            pass

    def reached(self, step):
        return os.path.exists(os.path.join(self.dir, step + ".reached"))

    def wait_reached(self, step, timeout=60):
        assert wait_for(lambda: self.reached(step), timeout=timeout, interval=0.05), \
            "step %s never reached" % step


@pytest.fixture
def gates(monkeypatch, tmp_path):
    d = tmp_path / "gates"
    d.mkdir()
    monkeypatch.setenv("NQRUST_DEBUG_GATE_DIR", str(d))
    g = Gates(str(d))
    yield g
    for f in os.listdir(str(d)):
        os.unlink(os.path.join(str(d), f))
