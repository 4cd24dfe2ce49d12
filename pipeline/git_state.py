"""The git commit a stage ran at, for provenance that travels with the data it writes.

Read with the ``git`` command (no library needed for two queries); ``None`` outside a git work
tree or without git, so a stage never fails for want of it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

CODE_PATHS = ("pipeline", "stages", "flows", "profiles", "pyproject.toml")
"""What "dirty" looks at: the code. During ``dvc repro`` DVC has already rewritten ``dvc.lock``,
and params live in the provenance itself, so neither counts."""


def git_state(folder: str | Path = ".") -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the work tree holding ``folder``; dirty = a tracked code
    file (:data:`CODE_PATHS`) differs from the commit."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=folder, capture_output=True, text=True, timeout=30, check=False
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "--verify", "HEAD")
    if not commit:
        return None
    status = git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS)
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
