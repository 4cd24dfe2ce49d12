"""One writer per output, and a stage that ends with the process that started it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.locks import OutputBusyError, output_lock
from pipeline.train.engine import COMPLETE_MARKER
from pipeline.train.multitask import train_mt
from stages.cli import main as mgm_main
from tests._tiny import TinyProject, make_shards, mt_params

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("writer") / "real", train=8, per_shard=4)


def test_a_second_run_on_the_same_output_is_refused_and_names_the_holder(shards, tmp_path, capsys):
    params = mt_params(shards, tmp_path, "train_mt.epochs=1")
    with output_lock(tmp_path / "models" / "mt", "train_mt mt/mt"):
        with pytest.raises(
            OutputBusyError, match=rf"{tmp_path / 'models' / 'mt'} is being written by .*pid {os.getpid()}"
        ):
            train_mt(params, "mt", progress=False)
        assert not (tmp_path / "models" / "mt" / "last.pt").exists()
        (tmp_path / "empty.yaml").write_text("{}\n")
        sets = [x for v in TinyProject(tmp_path, shards).overrides() for x in ("--set", v)]
        shard_args = ["shard", "--params", str(tmp_path / "empty.yaml"), *sets]
        with output_lock(shards, "mgm-pipeline shard"):
            assert mgm_main(shard_args) == 2
        assert "is being written by mgm-pipeline shard" in capsys.readouterr().err
    assert train_mt(params, "mt", progress=False)["mt"]["epochs_done"] == 1  # released: it runs


def test_a_lock_dies_with_its_holder(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pipeline.locks import output_lock\n"
         f"with output_lock({str(tmp_path)!r}, 'holder'):\n    print('held', flush=True); time.sleep(60)"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(OutputBusyError, match=rf"holder \(pid {holder.pid}\)"), output_lock(tmp_path):
        pass
    holder.kill()
    holder.wait()
    with output_lock(tmp_path):  # SIGKILL released it: the next run is not blocked
        pass


@pytest.mark.slow
def test_a_stage_ends_when_the_process_that_started_it_is_killed(shards, tmp_path):
    """As when `dvc repro` is killed: its stage must not go on writing outputs nobody records."""
    (tmp_path / "empty.yaml").write_text("{}\n")
    sets = TinyProject(tmp_path, shards).overrides("train_mt.epochs=500")
    stage = [
        sys.executable, "-m", "stages.train_mt", "--params", str(tmp_path / "empty.yaml"), "--variant", "mt",
        "--quiet", *[x for v in sets for x in ("--set", v)],
    ]  # fmt: skip
    parent = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, sys, time\nchild = subprocess.Popen({stage!r})\n"
         "print(child.pid, flush=True)\ntime.sleep(300)"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    child = int(parent.stdout.readline())
    deadline = time.monotonic() + 120
    while not (tmp_path / "models" / "mt" / "last.pt").exists():  # the stage is training
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 30
    while _alive(child):
        assert time.monotonic() < deadline, "the stage outlived its parent"
        time.sleep(0.1)
    assert not (tmp_path / "models" / "mt" / COMPLETE_MARKER).exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split()[2] == "Z")  # a zombie has ended
