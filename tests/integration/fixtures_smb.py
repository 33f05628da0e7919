"""pytest fixtures for SMB: throwaway smbd instances, a silent server and
the nqrust-smbfs binary. Loaded by conftest.py (fixtures_*.py)."""

import os

import pytest

from smbd import SilentServer, Smbd

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="session")
def smbd():
    """A private smbd: .host, .port, .shares {guest, secure, readonly} ->
    backing dir, .user, .password (hostile characters)."""
    s = Smbd().start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def smbd_old():
    """An smbd that speaks at most SMB2_10 (a 3.x pin cannot succeed).
    Session-scoped, started only by the tests that ask for it."""
    s = Smbd(max_protocol="SMB2_10").start()
    yield s
    s.stop()


@pytest.fixture(scope="session")
def silent_server():
    """Port of a loopback listener that accepts and never answers."""
    s = SilentServer().start()
    yield s.port
    s.stop()


@pytest.fixture(scope="session")
def smbfs_bin():
    build = os.environ.get("NQRUST_BUILD_DIR", os.path.join(_REPO, "build"))
    path = os.path.join(build, "nqrust-smbfs")
    if not os.access(path, os.X_OK):
        pytest.fail("%s is not built (run make, or set NQRUST_BUILD_DIR)" % path)
    return path
