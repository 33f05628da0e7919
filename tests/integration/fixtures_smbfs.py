"""pytest fixtures for direct nqrust-smbfs mounts (no agent): `mounter`
mounts with the bridge and unmounts at teardown. Loaded by conftest.py."""

import pytest

from test_smbfs import Mounter


@pytest.fixture
def mounter(smbfs_bin, tmp_path):
    m = Mounter(smbfs_bin, str(tmp_path))
    yield m
    m.cleanup()
