"""train_mt on tiny real shards: losses fall, exact resume, ST/MT layout, DDP under torchrun, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from pipeline.checkpoint import load_checkpoint
from pipeline.config import params_to_dict
from pipeline.data.reader import ShardDataset
from pipeline.errors import ShardError
from pipeline.train.engine import COMPLETE_MARKER, FINISHED_KIND, TrainingError
from pipeline.train.multitask import train_mt
from stages.cli import main as mgm_main
from tests._dvc_repo import REPO_ROOT
from tests._tiny import TinyProject, make_shards, mt_params


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    # 11 train images at 4 per shard: shards of 4, 3 and 4 samples, so 2 ranks get 2 and 1 shards
    return make_shards(tmp_path_factory.mktemp("mt") / "real", train=11, per_shard=4)


def test_training_lowers_every_task_loss_and_writes_its_outputs(shards, tmp_path):
    params = mt_params(shards, tmp_path, "train_mt.epochs=5", "train_mt.schedule=none")
    summary = train_mt(params, "mt", progress=False)["mt"]
    folder = tmp_path / "models" / "mt"
    assert sorted(p.name for p in folder.iterdir()) == ["best.pt", "last.pt", COMPLETE_MARKER]
    history = load_checkpoint(folder / "last.pt")["engine"]["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5]
    for task in ("seg", "depth", "normal"):
        assert history[-1][f"train_{task}_loss"] < 0.9 * history[0][f"train_{task}_loss"], task
    scores = [row["val_score"] for row in history]
    best = load_checkpoint(folder / "best.pt")
    assert best["epoch"] == summary["best_epoch"] == 1 + scores.index(min(scores))
    assert best["tasks"] == ["seg", "depth", "normal"]
    csv_lines = (tmp_path / "plots" / "mt" / "mt.csv").read_text().splitlines()
    assert csv_lines[0].startswith("epoch,step,lr,train_seg_loss") and len(csv_lines) == 6
    assert summary["epochs_done"] == 5 and summary["steps"] == 5 * 2  # 11 samples, batch 4, drop last
    record = load_checkpoint(folder / "last.pt")  # finished: the resume state shrank to the run's record
    assert record["kind"] == FINISHED_KIND and record["summary"] == summary
    assert not {"model", "optimizer"} & set(record) and (folder / "last.pt").stat().st_size < 20_000
    before = (folder / "last.pt").read_bytes()
    (folder / COMPLETE_MARKER).unlink()
    again = train_mt(params, "mt", progress=False)["mt"]  # finished, same params/data/code: no retraining
    assert again == summary and (folder / "last.pt").read_bytes() == before
    assert json.loads((folder / COMPLETE_MARKER).read_text()) == summary


def test_a_finished_run_keeps_its_resume_state_when_asked(shards, tmp_path):
    params = mt_params(shards, tmp_path, "train_mt.epochs=2", "runtime.keep_resume_state=true")
    train_mt(params, "mt", progress=False)
    last = load_checkpoint(tmp_path / "models" / "mt" / "last.pt")
    assert "kind" not in last and {"model", "optimizer", "engine"} <= set(last)


def test_a_record_without_its_best_checkpoint_trains_afresh(shards, tmp_path, capsys):
    params = mt_params(shards, tmp_path, "train_mt.epochs=1")
    first = train_mt(params, "mt", progress=False)["mt"]
    (tmp_path / "models" / "mt" / "best.pt").unlink()
    again = train_mt(params, "mt", progress=False)["mt"]
    assert "its best.pt is gone; training afresh" in capsys.readouterr().err
    assert (tmp_path / "models" / "mt" / "best.pt").is_file() and again["epochs_done"] == first["epochs_done"]


def test_changed_params_restart_instead_of_resuming(shards, tmp_path, capsys):
    train_mt(mt_params(shards, tmp_path, "train_mt.epochs=2"), "mt", progress=False, max_epochs=1)
    train_mt(mt_params(shards, tmp_path, "train_mt.epochs=2", "train_mt.lr=0.01"), "mt", progress=False)
    err = capsys.readouterr().err
    assert "not resuming" in err and "train_mt.lr: checkpoint 0.003 vs params 0.01" in err
    assert "training afresh" in err
    history = load_checkpoint(tmp_path / "models" / "mt" / "last.pt")["engine"]["history"]
    assert [row["epoch"] for row in history] == [1, 2]


def test_st_trains_one_model_per_task(shards, tmp_path):
    params = mt_params(shards, tmp_path, "model.tasks=[seg, normal]", "train_mt.epochs=1")
    summaries = train_mt(params, "st", progress=False)
    assert sorted(summaries) == ["normal", "seg"]
    for task in ("seg", "normal"):
        checkpoint = load_checkpoint(tmp_path / "models" / "st" / task / "best.pt")
        assert checkpoint["tasks"] == [task]
        assert not any(name.startswith("decoders.depth") for name in checkpoint["model"])
        assert (tmp_path / "plots" / "st" / f"{task}.csv").is_file()


def test_non_finite_loss_stops_naming_the_step_and_task(shards, tmp_path):
    params = mt_params(shards, tmp_path, "train_mt.lr=1e30", "train_mt.epochs=3", "train_mt.schedule=none")
    with pytest.raises(
        TrainingError, match=r"loss of task '(seg|depth|normal)' is (nan|inf|-inf) at step \d+"
    ):
        train_mt(params, "mt", progress=False)
    assert not (tmp_path / "models" / "mt" / COMPLETE_MARKER).exists()


def test_missing_shards_are_a_clear_error(tmp_path):
    params = mt_params(tmp_path / "nowhere", tmp_path)
    with pytest.raises(ShardError, match="nowhere"):
        train_mt(params, "mt", progress=False)


@pytest.mark.slow
def test_torchrun_two_processes_partition_the_data(shards, tmp_path):
    params = mt_params(shards, tmp_path, "train_mt.epochs=1", "train_mt.batch_size=2")
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params_to_dict(params)))
    keys_dir = tmp_path / "keys"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "stages.train_mt", "--params", str(params_file), "--variant", "mt", "--quiet",
        "--keys-log", str(keys_dir), "--metrics", str(tmp_path / "metrics.json"),
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    seen = {rank: (keys_dir / f"mt-mt-epoch1-rank{rank}.txt").read_text().split() for rank in range(2)}
    assert not set(seen[0]) & set(seen[1])
    for rank in range(2):  # each rank trains on its single-process partition (last odd sample dropped)
        expected = ShardDataset(shards, "train", shuffle=True, seed=0, rank=rank, world_size=2)
        expected.set_epoch(0)
        keys = [item["key"] for item in expected]
        assert seen[rank] == keys[: len(keys) - len(keys) % 2]
    assert abs(len(seen[0]) - len(seen[1])) >= 2  # uneven numbers of batches: Join keeps ranks in step
    checkpoint = load_checkpoint(tmp_path / "models" / "mt" / "last.pt")
    assert (
        checkpoint["engine"]["units_done"] == 1 and (tmp_path / "models" / "mt" / COMPLETE_MARKER).is_file()
    )
    assert (tmp_path / "metrics.json").is_file()


def test_a_run_that_would_take_no_step_is_refused_before_any_work(shards, tmp_path):
    params = mt_params(shards, tmp_path, "train_mt.batch_size=16")  # the train split holds 11
    with pytest.raises(
        TrainingError, match=r"train split of .* holds 11 samples, fewer than train_mt\.batch_size \(16\)"
    ):
        train_mt(params, "mt", progress=False)
    assert not (tmp_path / "models").exists()


def test_a_file_in_the_way_of_an_output_is_one_line_before_any_epoch(shards, tmp_path, capsys):
    (tmp_path / "plots").write_text("a user's file where the plots folder goes")
    sets = [x for value in TinyProject(tmp_path, shards).overrides() for x in ("--set", value)]
    (tmp_path / "empty.yaml").write_text("{}\n")
    code = mgm_main(
        ["train_mt", "--params", str(tmp_path / "empty.yaml"), "--variant", "mt", "--quiet", *sets]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(tmp_path / "plots") in err and ("Not a directory" in err or "File exists" in err)
    assert not (tmp_path / "models" / "mt" / "last.pt").exists()  # found before training, not after
    assert (tmp_path / "plots").read_text().startswith("a user's file")


def test_more_loader_workers_than_shards_is_refused_before_any_worker_starts(shards, tmp_path):
    params = mt_params(shards, tmp_path, "runtime.workers=8")  # the train split has 3 shards
    with pytest.raises(ShardError, match=r"split 'train' .* 3 shard\(s\), fewer than the 8 readers"):
        train_mt(params, "mt", progress=False)
    assert not (tmp_path / "models" / "mt" / "last.pt").exists()


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder on a read-only bind mount (root can write anywhere else); skipped where mounting is
    not allowed."""
    source, mount = tmp_path / "source", tmp_path / "read-only"
    source.mkdir()
    mount.mkdir()
    commands = [["mount", "--bind", str(source), str(mount)], ["mount", "-o", "remount,bind,ro", str(mount)]]
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            subprocess.run(["umount", str(mount)], capture_output=True)
            pytest.skip(f"cannot make a read-only bind mount here: {result.stderr.strip() or command}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_read_only_output_folder_is_one_line_before_any_work(shards, tmp_path, read_only_folder, capsys):
    sets = TinyProject(tmp_path, shards).overrides(f"train_mt.out={read_only_folder / 'models'}")
    (tmp_path / "empty.yaml").write_text("{}\n")
    args = ["train_mt", "--params", str(tmp_path / "empty.yaml"), "--variant", "mt", "--quiet"]
    code = mgm_main([*args, *[x for v in sets for x in ("--set", v)]])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert str(read_only_folder / "models") in err and "Read-only file system" in err
