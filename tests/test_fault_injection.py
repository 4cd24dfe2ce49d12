"""Fault injection over every stage: SIGKILL at seeded random moments, then a rerun to the end.

For each stage at toy size: an uninterrupted run gives the reference; a second run into fresh
folders is killed at two seeded random moments and then run to completion. The result must equal the
reference (bytes for data and reports, tensors for checkpoints), no temporaries may be left, and a
watcher thread checks throughout that nothing finished-looking is ever partial.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.checkpoint import load_checkpoint
from pipeline.train.engine import COMPLETE_MARKER
from pipeline.train.multitask import train_mt
from tests._files import checkpoint_tensors
from tests._tiny import TinyProject, mgm_project

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[1]
KILLS = 2


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> TinyProject:
    """Real shards with a weak split, a one-step GAN, and finished st/mt models for evaluate."""
    project = mgm_project(tmp_path_factory.mktemp("faults"))
    params = project.params("train_mt.epochs=1")
    for variant in ("st", "mt"):
        train_mt(params, variant, progress=False)
    (project.root / "empty.yaml").write_text("{}\n")
    return project


def _outputs(stage: str, root: Path, run: str) -> tuple[list[str], list[str], list[Path]]:
    """(extra CLI args, --set values, output paths) of ``stage`` writing below ``root/run``."""
    out = root / run
    metrics = out / "metrics"
    table: dict[str, tuple[list[str], list[str], list[Path]]] = {
        "shard": (
            [],
            [f"shard.out={out / 'real'}", "data.rooms.train=24", "shard.samples_per_shard=4"],
            [out / "real"],
        ),
        "train_gan": (
            [],
            [f"gan.out={out / 'gan'}", f"gan.plots={out / 'gan_plots'}", "gan.steps=40", "gan.eval_every=10",
             "gan.checkpoint_every=5", "gan.sample_every=10", "gan.eval_images=4"],
            [out / "gan", out / "gan_plots"],
        ),
        "synthesize": (
            ["--metrics", str(metrics / "synthesize.json")],
            [f"synthesize.out={out / 'synthetic'}", "synthesize.count=160", "synthesize.batch_size=8",
             "synthesize.samples_per_shard=16"],
            [out / "synthetic", metrics],
        ),
        "train_mgm": (
            [],
            [f"mgm.out={out / 'mgm'}", f"mgm.plots={out / 'mgm_plots'}", "mgm.epochs=5"],
            [out / "mgm", out / "mgm_plots"],
        ),
        "train_mt": (
            ["--variant", "mt", "--metrics", str(metrics / "mt.json")],
            [f"train_mt.out={out / 'models'}", f"train_mt.plots={out / 'plots'}", "train_mt.epochs=6"],
            [out / "models", out / "plots", metrics],
        ),
        "evaluate": (
            ["--metrics-dir", str(metrics)], [f"evaluate.out={out / 'reports'}"], [out / "reports", metrics],
        ),
    }  # fmt: skip
    return table[stage]


STAGES = ("shard", "train_gan", "synthesize", "train_mgm", "train_mt", "evaluate")


def _command(project: TinyProject, stage: str, run: str) -> tuple[list[str], list[Path]]:
    extra, sets, outputs = _outputs(stage, project.root, run)
    values = project.overrides(*sets)
    command = [
        sys.executable,
        "-m",
        f"stages.{stage}",
        "--params",
        str(project.root / "empty.yaml"),
        "--quiet",
    ]
    return [*command, *extra, *[x for v in values for x in ("--set", v)]], outputs


def _finished_looking_is_complete(outputs: list[Path]) -> list[str]:
    """What a watcher may see: a data folder only complete; a marker only beside a finished run."""
    problems = []
    for folder in outputs:
        if not folder.exists():
            continue
        for summary in folder.rglob("summary.json"):
            manifest = summary.parent / "manifest.parquet"
            if not manifest.exists():
                problems.append(f"{summary.parent}: summary without manifest")
        for marker in folder.rglob(COMPLETE_MARKER):
            try:
                units = json.loads(marker.read_text())
                last = load_checkpoint(marker.parent / "last.pt")
            except Exception as err:  # a marker must never stand beside an unreadable run
                problems.append(f"{marker}: {err}")
                continue
            if last["engine"]["units_done"] != units.get(
                "epochs", units.get("steps", last["engine"]["units_done"])
            ):
                problems.append(f"{marker}: written before the last unit")
    return problems


class Watcher(threading.Thread):
    def __init__(self, outputs: list[Path]) -> None:
        super().__init__(daemon=True)
        self.outputs, self.problems, self.running = outputs, [], True

    def run(self) -> None:
        while self.running:
            self.problems += _finished_looking_is_complete(self.outputs)
            time.sleep(0.02)


def _digest(path: Path, run_root: Path) -> dict[str, str]:
    """Bytes of data and reports; tensors of checkpoints (their other fields hold run times); records
    with the run's own folder name replaced (they name where they were written)."""
    found: dict[str, str] = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        name = file.relative_to(path).as_posix()
        if file.suffix == ".pt":
            tensors = sorted(checkpoint_tensors(load_checkpoint(file)).items())
            data = b"".join(key.encode() + t.contiguous().numpy().tobytes() for key, t in tensors)
            found[name] = hashlib.sha256(data).hexdigest()
        elif file.suffix in (".json", ".csv", ".md"):
            found[name] = _without_times(file, run_root)
        else:
            found[name] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def _without_times(file: Path, run_root: Path) -> str:
    """A record minus its wall-clock fields (seconds, train_seconds) and its run folder's name."""
    text = file.read_text().replace(str(run_root), "<run>")
    if file.suffix == ".md":
        return text
    if file.suffix == ".json":
        return json.dumps(_drop_times(json.loads(text)), sort_keys=True)
    rows = [line.split(",") for line in text.splitlines()]
    keep = [i for i, name in enumerate(rows[0]) if "seconds" not in name] if rows else []
    return "\n".join(",".join(row[i] for i in keep if i < len(row)) for row in rows)


def _drop_times(value):
    if isinstance(value, dict):
        return {k: _drop_times(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [_drop_times(v) for v in value]
    return value


def _run(command: list[str], watcher: Watcher | None = None, kill_after: float | None = None) -> float:
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if kill_after is None:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err.decode()[-3000:]
    else:
        try:
            process.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
    return time.monotonic() - started


@pytest.mark.parametrize("stage", STAGES)
def test_kills_at_random_moments_then_a_rerun_equal_an_uninterrupted_run(project, stage):
    reference_command, reference_outputs = _command(project, stage, f"{stage}-reference")
    duration = _run(reference_command)
    command, outputs = _command(project, stage, f"{stage}-killed")
    watcher = Watcher(outputs)
    watcher.start()
    rng = random.Random(f"faults-{stage}")
    try:
        for _ in range(KILLS):
            _run(command, kill_after=rng.uniform(0.3, max(0.6, 0.9 * duration)))
        _run(command)
    finally:
        watcher.running = False
        watcher.join()
    assert watcher.problems == []
    leftovers = [
        p for folder in outputs for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tmp-" in p.name
    ]
    assert leftovers == []
    for reference, killed in zip(reference_outputs, outputs):
        expected = _digest(reference, project.root / f"{stage}-reference")
        assert _digest(killed, project.root / f"{stage}-killed") == expected, f"{stage}: {killed.name}"


def test_digest_ignores_times_but_not_values(tmp_path):
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "a.json").write_text('{"train_seconds": 1.5, "loss": 0.25}')
    first = _digest(tmp_path, tmp_path)
    (tmp_path / "metrics" / "a.json").write_text('{"train_seconds": 9.0, "loss": 0.25}')
    assert _digest(tmp_path, tmp_path) == first
    (tmp_path / "metrics" / "a.json").write_text('{"train_seconds": 9.0, "loss": 0.5}')
    assert _digest(tmp_path, tmp_path) != first
