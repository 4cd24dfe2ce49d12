"""Offline Prefect and DVC settings, applied to the environment before Prefect is imported.

Values the user already exported win; only missing ones are filled in.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from pathlib import Path

OFFLINE = {
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY": "false",
    "PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
}


def offline_env(repo: str | Path, env: MutableMapping[str, str] | None = None) -> MutableMapping[str, str]:
    """Fill in offline settings and ``PREFECT_HOME`` (default ``<repo>/.prefect``) in ``env``.

    ``env`` defaults to ``os.environ``; call this before the first ``import prefect``.
    """
    target = os.environ if env is None else env
    for key, value in OFFLINE.items():
        target.setdefault(key, value)
    target.setdefault("PREFECT_HOME", str(Path(repo).resolve() / ".prefect"))
    return target
