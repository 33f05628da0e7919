"""Integration test plugins: each fixtures_*.py module beside this file."""

import glob
import os

_here = os.path.dirname(os.path.abspath(__file__))
pytest_plugins = sorted(
    os.path.basename(p)[:-3] for p in glob.glob(os.path.join(_here, "fixtures_*.py"))
)
