"""The DVC side of the flows: discover the stages of ``dvc.yaml`` in order, run one, read ``dvc.lock``.

Stages are read with DVC's own API, so ``foreach``/``matrix`` stages come expanded (``train_mt@st``)
and every ``${...}`` is resolved. A stage runs as ``dvc repro --single-item <stage>`` in a
subprocess: DVC decides whether it is up to date and records ``dvc.lock`` only when it succeeds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.errors import PipelineError

DVC = (sys.executable, "-m", "dvc")


class DvcError(PipelineError):
    """DVC could not read the project or a DVC command failed (the message says which)."""


class DvcRunFailed(PipelineError):
    """A DVC command exited with an error; the message quotes the end of its output."""

    def __init__(self, label: str, returncode: int, tail: Sequence[str]) -> None:
        self.label, self.returncode, self.tail = label, returncode, list(tail)
        quoted = "\n".join(f"  | {line}" for line in self.tail) or "  (no output)"
        super().__init__(f"{label} failed with exit code {returncode}; its last output:\n{quoted}")


class StageFailed(DvcRunFailed):
    """A DVC stage failed (``dvc repro`` left its ``dvc.lock`` entry as it was)."""

    def __init__(self, stage: str, returncode: int, tail: Sequence[str]) -> None:
        self.stage = stage
        super().__init__(f"DVC stage {stage!r}", returncode, tail)


@dataclass(frozen=True)
class Stage:
    """One runnable DVC stage (a ``foreach``/``matrix`` item is a stage of its own)."""

    name: str
    cmd: str
    desc: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    metrics: tuple[str, ...]
    plots: tuple[str, ...]
    upstream: tuple[str, ...]


@dataclass(frozen=True)
class StageRun:
    """How one ``dvc repro --single-item`` went."""

    stage: str
    status: str  # ran | restored | up to date
    seconds: float
    lines: int


def dvc_env(progress_interval: float | None = None) -> dict[str, str]:
    """Environment of DVC subprocesses: offline, unbuffered, throttled progress bars."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("DVC_NO_ANALYTICS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    if progress_interval is not None:
        env.setdefault("TQDM_MININTERVAL", str(progress_interval))
    return env


def dvc_command(repo: Path, *args: str, timeout: float = 600) -> str:
    """Run ``dvc <args>`` in ``repo`` and return its stdout; a failure raises :class:`DvcError`."""
    result = subprocess.run(
        [*DVC, *args], cwd=repo, env=dvc_env(), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise DvcError(f"dvc {' '.join(args)} in {repo} failed:\n{result.stdout}{result.stderr}".rstrip())
    return result.stdout


def stable_topological_order(names: Sequence[str], upstream: dict[str, Sequence[str]]) -> list[str]:
    """``names`` ordered so every stage follows its upstream stages, otherwise keeping the given order."""
    position = {name: index for index, name in enumerate(names)}
    waiting = {name: {up for up in upstream.get(name, ()) if up in position} for name in names}
    done: list[str] = []
    while waiting:
        ready = [name for name, ups in waiting.items() if not ups]
        if not ready:
            raise DvcError(f"dvc.yaml: stages {sorted(waiting)} depend on each other in a cycle")
        first = min(ready, key=position.__getitem__)
        done.append(first)
        del waiting[first]
        for ups in waiting.values():
            ups.discard(first)
    return done


def select_stages(stages: Sequence[Stage], names: Sequence[str]) -> list[Stage]:
    """The stages ``names`` and everything upstream of them, in ``stages``' order (as ``dvc repro
    NAME`` would consider them; DVC still skips what is up to date). ``[]`` selects all."""
    if not names:
        return list(stages)
    by_name = {stage.name: stage for stage in stages}
    # a foreach group's name stands for all its items, as in `dvc repro train_mt`
    names = [item for name in names for item in ([name] if name in by_name else _group(by_name, name))]
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise DvcError(
            f"no stage named {', '.join(map(repr, unknown))} in dvc.yaml (stages: {', '.join(by_name)})"
        )
    wanted: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending += [up for up in by_name[name].upstream if up in by_name]
    return [stage for stage in stages if stage.name in wanted]


def _group(by_name: dict[str, Stage], name: str) -> list[str]:
    """The items ``name@...`` of foreach group ``name`` ([name] when there are none: reported unknown)."""
    return [item for item in by_name if item.startswith(f"{name}@")] or [name]


def discover_stages(repo: str | Path) -> list[Stage]:
    """Every pipeline stage of the DVC project at ``repo``, upstream first, else in ``dvc.yaml`` order."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo
    from dvc.stage import PipelineStage

    root = Path(repo).resolve()
    try:
        with Repo(str(root)) as dvc_repo:
            index = dvc_repo.index
            stages = [stage for stage in index.stages if isinstance(stage, PipelineStage)]
            upstream: dict[str, list[str]] = {_address(stage, root): [] for stage in stages}
            for child, parent in index.graph.edges:  # edges point from a stage to what it depends on
                if _address(child, root) in upstream:
                    upstream[_address(child, root)].append(_address(parent, root))
            found = {
                name: _describe(stage, root, name, upstream[name])
                for stage in stages
                for name in [_address(stage, root)]
            }
    except DvcException as err:
        raise DvcError(f"{root}: DVC cannot read the pipeline: {err}") from err
    if not found:
        raise DvcError(f"{root}: dvc.yaml defines no stages")
    return [found[name] for name in stable_topological_order(list(found), upstream)]


def _address(stage: Any, root: Path) -> str:
    """The stage's name as ``dvc repro`` takes it in ``root``: ``train_mt@st`` or ``sub/dvc.yaml:name``."""
    dvcfile = Path(os.path.relpath(stage.path, root)).as_posix()
    name = getattr(stage, "name", None) or dvcfile
    return name if dvcfile == "dvc.yaml" else f"{dvcfile}:{name}"


def _describe(stage: Any, root: Path, name: str, upstream: Sequence[str]) -> Stage:
    def rel(output: Any) -> str:
        return Path(os.path.relpath(output.fs_path, root)).as_posix()

    return Stage(
        name=name,
        cmd=stage.cmd if isinstance(stage.cmd, str) else " && ".join(stage.cmd),
        desc=stage.desc or "",
        deps=tuple(rel(dep) for dep in stage.deps if getattr(dep, "fs_path", None)),
        outs=tuple(rel(out) for out in stage.outs),
        metrics=tuple(rel(out) for out in stage.outs if out.metric),
        plots=tuple(rel(out) for out in stage.outs if out.plot),
        upstream=tuple(dict.fromkeys(upstream)),
    )


@dataclass(frozen=True)
class Streamed:
    """The end of a streamed DVC command."""

    returncode: int
    tail: list[str]
    lines: int
    seconds: float


def stream_dvc(
    repo: str | Path,
    args: Sequence[str],
    on_line: Callable[[str], None],
    *,
    tail_lines: int = 30,
    progress_interval: float | None = None,
) -> Streamed:
    """Run ``dvc <args>`` in ``repo``; each non-empty line of stdout and stderr goes to ``on_line``."""
    start = time.monotonic()
    tail: deque[str] = deque(maxlen=tail_lines)
    count = 0
    with subprocess.Popen(
        [*DVC, *args],
        cwd=repo,
        env=dvc_env(progress_interval),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
    ) as process:
        assert process.stdout is not None
        for raw in process.stdout:  # text mode splits tqdm's carriage returns into lines too
            line = raw.rstrip()
            if line.strip():
                count += 1
                tail.append(line)
                on_line(line)
        returncode = process.wait()
    return Streamed(returncode, list(tail), count, time.monotonic() - start)


def run_stage(
    repo: str | Path,
    stage: str,
    on_line: Callable[[str], None],
    *,
    force: bool = False,
    tail_lines: int = 30,
    progress_interval: float | None = None,
) -> StageRun:
    """``dvc repro --single-item <stage>`` in ``repo``, passing each output line to ``on_line``.

    Raises :class:`StageFailed` (quoting the last ``tail_lines`` lines) when DVC exits with an error;
    DVC then leaves the stage's entry in ``dvc.lock`` as it was.
    """
    seen = {"ran": False, "restored": False}

    def watch(line: str) -> None:
        seen["ran"] = seen["ran"] or line.startswith(f"Running stage '{stage}'")
        seen["restored"] = seen["restored"] or ("is cached" in line and f"'{stage}'" in line)
        on_line(line)

    args = ["repro", "--single-item", *(["--force"] if force else []), stage]
    result = stream_dvc(repo, args, watch, tail_lines=tail_lines, progress_interval=progress_interval)
    if result.returncode != 0:
        raise StageFailed(stage, result.returncode, result.tail)
    status = "ran" if seen["ran"] else "restored" if seen["restored"] else "up to date"
    return StageRun(stage=stage, status=status, seconds=result.seconds, lines=result.lines)


def read_lock(repo: str | Path) -> dict[str, Any]:
    """The ``stages`` mapping of ``dvc.lock`` (empty when no stage has run yet)."""
    path = Path(repo) / "dvc.lock"
    if not path.is_file():
        return {}
    return (yaml.safe_load(path.read_text()) or {}).get("stages", {}) or {}


def default_remote(repo: str | Path) -> tuple[str, str] | None:
    """``(name, url)`` of the project's default DVC remote, or ``None``."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        config = dvc_repo.config
        name = config["core"].get("remote")
        if not name or name not in config["remote"]:
            return None
        return name, str(config["remote"][name]["url"])
