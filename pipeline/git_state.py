"""The git commit a stage ran at, for provenance that travels with the data it writes.

Read with the ``git`` command (no library needed for two queries); ``None`` outside a git work
tree or without git, so a stage never fails for want of it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def git_state(folder: str | Path = ".") -> dict[str, Any] | None:
    """``{"commit": sha, "dirty": bool}`` of the work tree holding ``folder``; dirty = tracked files
    differ from the commit (outputs DVC tracks are git-ignored, so they do not count)."""

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
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status) if status is not None else None}
