"""Build a throwaway git + DVC repository holding a copy of this project, for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests._tiny import PIPELINE

REPO_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PATHS = (
    "pipeline", "stages", "flows", "profiles", "data/sources", "dvc.yaml", "params.yaml", ".gitignore",
)  # fmt: skip
TINY_PARAMS = {
    key: PIPELINE[key]
    for key in (
        "data.resolution",
        "data.rooms.train",
        "data.rooms.val",
        "data.rooms.test",
        "data.rooms.reference",
        "shard.workers",
    )
}


def project_env() -> dict[str, str]:
    """Environment for subprocesses: this interpreter's bin first, offline DVC, a git identity."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(
        DVC_NO_ANALYTICS="1",
        DO_NOT_TRACK="1",
        GIT_AUTHOR_NAME="mgm test",
        GIT_AUTHOR_EMAIL="test@mgm-pipeline.invalid",
        GIT_COMMITTER_NAME="mgm test",
        GIT_COMMITTER_EMAIL="test@mgm-pipeline.invalid",
    )
    return env


def run(args: list[str], cwd: Path, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run a command in ``cwd``; on failure show its output in the assertion."""
    result = subprocess.run(args, cwd=cwd, env=project_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result


def set_params(repo: Path, values: dict[str, Any]) -> None:
    """Set dotted keys in the repo's params.yaml."""
    path = repo / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in values.items():
        node = params
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def make_project_repo(root: Path, params: dict[str, Any] | None = None) -> Path:
    """Copy the project into ``root``, ``git init`` + ``dvc init``, apply tiny params, commit."""
    root.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PROJECT_PATHS:
        source = REPO_ROOT / name
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    run(["git", "init", "-q", "-b", "main"], root)
    run([sys.executable, "-m", "dvc", "init", "-q"], root)
    shutil.copy2(REPO_ROOT / ".dvc" / "config", root / ".dvc" / "config")  # the project's cache link type
    run([sys.executable, "-m", "dvc", "config", "core.analytics", "false"], root)
    set_params(root, {**TINY_PARAMS, **(params or {})})
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "project copy"], root)
    return root


def dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``dvc`` from this interpreter in ``repo``."""
    return run([sys.executable, "-m", "dvc", *args], repo, check=check)
