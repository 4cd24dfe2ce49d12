"""Shared fixtures: offline settings for DVC and Prefect, the optional ../shared data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@pytest.fixture
def nyuv2_mini() -> Path:
    """The ten real NYUv2 samples shipped beside the repo; skip when ../shared is absent."""
    path = SHARED / "datasets" / "nyuv2-mini"
    if not path.is_dir():
        pytest.skip("../shared/datasets/nyuv2-mini is not present (only in the project's CI)")
    return path
