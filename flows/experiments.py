"""DVC experiments for the sweep flow: run one in the workspace, read results from ``dvc exp show --json``."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flows.artifacts import flatten
from flows.dvc_stages import DvcRunFailed, Streamed, dvc_command, stream_dvc


@dataclass(frozen=True)
class Experiment:
    """One experiment as ``dvc exp show`` reports it."""

    name: str
    rev: str
    params: dict[str, Any]  # params file -> its nested values
    metrics: dict[str, dict[str, Any]]  # metrics file -> flattened values


def experiment_name(ratio: float, stamp: str) -> str:
    """A git-ref-safe experiment name: ``ratio-0.5-20250101-120000``."""
    return f"ratio-{ratio:g}-{stamp}".replace("+", "")


def run_experiment(
    repo: str | Path,
    name: str,
    assignments: Sequence[str],
    on_line: Callable[[str], None],
    *,
    tail_lines: int = 30,
    progress_interval: float | None = None,
) -> Streamed:
    """``dvc exp run --name <name> -S <assignment> ...`` in the workspace of ``repo``."""
    args = ["exp", "run", "--name", name]
    for assignment in assignments:
        args += ["--set-param", assignment]
    result = stream_dvc(repo, args, on_line, tail_lines=tail_lines, progress_interval=progress_interval)
    if result.returncode != 0:
        raise DvcRunFailed(f"experiment {name!r} (dvc {' '.join(args)})", result.returncode, result.tail)
    return result


def show_experiments(repo: str | Path) -> list[dict[str, Any]]:
    """The parsed output of ``dvc exp show --json`` in ``repo``."""
    return json.loads(dvc_command(repo, "exp", "show", "--json"))


def experiments_by_name(shown: Iterable[Mapping[str, Any]]) -> dict[str, Experiment]:
    """Every named experiment of ``dvc exp show --json`` output, newest first as DVC lists them."""
    found: dict[str, Experiment] = {}
    for baseline in shown:
        for group in baseline.get("experiments") or []:
            for rev in group.get("revs") or []:
                name = rev.get("name") or group.get("name")
                data = rev.get("data") or {}
                if not name or name in found:
                    continue
                found[name] = Experiment(
                    name=name,
                    rev=rev.get("rev", ""),
                    params={
                        file: (entry or {}).get("data", {}) for file, entry in data.get("params", {}).items()
                    },
                    metrics={
                        file: flatten((entry or {}).get("data", {}))
                        for file, entry in (data.get("metrics") or {}).items()
                    },
                )
    return found
