"""Shared fixtures: offline settings for DVC and Prefect, the optional ../shared data."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# Prefect in tests: a throwaway PREFECT_HOME (set before any test imports prefect), never a user's server.
_PREFECT_HOME = tempfile.mkdtemp(prefix="mgm-test-prefect-home-")
atexit.register(shutil.rmtree, _PREFECT_HOME, ignore_errors=True)
os.environ["PREFECT_HOME"] = _PREFECT_HOME
os.environ.pop("PREFECT_API_URL", None)


@pytest.fixture
def nyuv2_mini() -> Path:
    """The ten real NYUv2 samples shipped beside the repo; skip when ../shared is absent."""
    path = SHARED / "datasets" / "nyuv2-mini"
    if not path.is_dir():
        pytest.skip("../shared/datasets/nyuv2-mini is not present (only in the project's CI)")
    return path
