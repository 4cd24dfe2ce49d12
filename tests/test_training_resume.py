"""Every training stage, killed with SIGKILL after its first checkpoint and rerun, ends with exactly the
tensors of an uninterrupted run (CPU, fixed seed, one thread), and leaves no temporaries behind."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pipeline.checkpoint import load_checkpoint
from pipeline.train.engine import COMPLETE_MARKER
from tests._files import checkpoint_tensors
from tests._tiny import TinyProject, mgm_overrides, mgm_project

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[1]


def _project(root: Path) -> TinyProject:
    return TinyProject(root, root / "real")


def _train_mt(root: Path, out: str) -> tuple[list[str], Path, Path]:
    sets = _project(root).overrides(
        f"train_mt.out={root / out}", f"train_mt.plots={root / out / 'plots'}", "train_mt.epochs=4"
    )
    return (
        ["stages.train_mt", "--variant", "mt", *_sets(sets)],
        root / out / "mt",
        root / out / "plots" / "mt",
    )


def _train_mt_mixed(root: Path, out: str) -> tuple[list[str], Path, Path]:
    """``train_mt --variant mgm-shards``: labelled shards mixed with the weak split, with a fresh R trained on
    the labelled rows and the SSL head (their states and optimizer moments resume too)."""
    args, _, _ = _train_mt(root, out)
    sets = ["mix.weak=real", "mix.synthetic_ratio=0.25", "mix.auxiliary_init=fresh"]
    args[2] = "mgm-shards"
    return [*args, *_sets(sets)], root / out / "mgm-shards", root / out / "plots" / "mgm-shards"


def _train_gan(root: Path, out: str) -> tuple[list[str], Path, Path]:
    sets = _project(root).overrides(
        f"gan.out={root / out}", f"gan.plots={root / out / 'plots'}", "gan.steps=8", "gan.checkpoint_every=2",
        "gan.eval_every=2", "gan.sample_every=2", "gan.eval_images=4",
    )  # fmt: skip
    return ["stages.train_gan", *_sets(sets)], root / out, root / out / "plots"


def _train_mgm(root: Path, out: str) -> tuple[list[str], Path, Path]:
    sets = mgm_overrides(root, out, "mgm.epochs=4")
    return ["stages.train_mgm", *_sets(sets)], root / out, root / out / "plots"


STAGES = {
    "train_mt": _train_mt,
    "train_mt_mixed": _train_mt_mixed,
    "train_gan": _train_gan,
    "train_mgm": _train_mgm,
}


def _sets(values: list[str]) -> list[str]:
    values = [*values, "runtime.keep_resume_state=true"]  # compared below: the final full states
    return [part for value in values for part in ("--set", value)]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = mgm_project(tmp_path_factory.mktemp("resume")).root
    (root / "empty.yaml").write_text("{}\n")
    return root


def _command(root: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-m", args[0], "--params", str(root / "empty.yaml"), "--quiet", *args[1:]]


def _run(root: Path, args: list[str]) -> None:
    result = subprocess.run(_command(root, args), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def _kill_after_first_checkpoint(root: Path, args: list[str], folder: Path) -> None:
    process = subprocess.Popen(
        _command(root, args), cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while not (folder / "last.pt").exists():
        assert process.poll() is None, "the stage ended before its first checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (folder / COMPLETE_MARKER).exists(), "killed too late: the run had already finished"


def _rows(folder: Path) -> list[dict[str, str]]:
    rows = []
    for path in sorted(folder.glob("*.csv")):
        with path.open() as stream:
            rows += [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(stream)]
    return rows


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_kill_after_first_checkpoint_then_rerun_equals_an_uninterrupted_run(root, stage):
    args_whole, whole, plots_whole = STAGES[stage](root, f"{stage}-whole")
    args_parts, parts, plots_parts = STAGES[stage](root, f"{stage}-killed")
    _run(root, args_whole)
    _kill_after_first_checkpoint(root, args_parts, parts)
    _run(root, args_parts)
    assert (parts / COMPLETE_MARKER).is_file()
    assert not list(parts.rglob("*.tmp"))
    for name in ("last.pt", "best.pt"):
        a, b = (
            checkpoint_tensors(load_checkpoint(whole / name)),
            checkpoint_tensors(load_checkpoint(parts / name)),
        )
        assert a.keys() == b.keys() and a, name
        different = [key for key in a if not torch.equal(a[key], b[key])]
        assert different == [], f"{name}: {different[:5]}"
    assert _rows(plots_whole) == _rows(plots_parts) != []
