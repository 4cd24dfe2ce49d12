"""Checkpoints (weights-only, atomic, RNG restore) and run-history files."""

from __future__ import annotations

import random

import pytest
import torch

from pipeline.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_strict,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from pipeline.runtime import MAX_AUTO_WORKERS, device_flag, loader_workers
from pipeline.train.history import write_history_csv, write_metrics_json


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": 7, "rng": rng_state()}
    path = save_checkpoint(state, tmp_path / "last.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
    loaded = load_checkpoint(path)
    assert loaded["step"] == 7
    assert torch.equal(loaded["model"]["weight"], model.weight.detach())
    restored = torch.optim.Adam(torch.nn.Linear(3, 2).parameters(), lr=1e-3)
    restored.load_state_dict(loaded["optimizer"])


def test_rng_state_restores_python_and_torch():
    state = rng_state()
    expected = (random.random(), torch.rand(3))
    set_rng_state(state)
    assert random.random() == expected[0]
    assert torch.equal(torch.rand(3), expected[1])


def test_mismatched_state_names_keys_and_shapes(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt cannot be loaded"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(
        CheckpointError, match=r"shape mismatch bias: .*; weight: checkpoint \(2, 3\) vs model \(4, 3\)"
    ):
        load_state_strict(torch.nn.Linear(3, 4), torch.nn.Linear(3, 2).state_dict(), "ckpt.pt")
    with pytest.raises(CheckpointError, match="missing keys"):
        load_state_strict(torch.nn.Linear(3, 2), {"weight": torch.zeros(2, 3)}, "ckpt.pt")


def test_history_csv_and_metrics_json(tmp_path):
    rows = [{"epoch": 0, "loss": 1.23456789}, {"epoch": 1, "loss": 0.5, "miou": 0.25}]
    text = write_history_csv(rows, tmp_path / "h.csv").read_text()
    assert text == "epoch,loss,miou\n0,1.23457,\n1,0.5,0.25\n"
    metrics = write_metrics_json({"seg": {"miou": 0.123456789}}, tmp_path / "m.json").read_text()
    assert '"miou": 0.123457' in metrics


def test_equal_checkpoints_are_equal_bytes(tmp_path):
    state = {"model": torch.nn.Linear(3, 2).state_dict(), "step": 3}
    first = save_checkpoint(state, tmp_path / "a" / "best.pt").read_bytes()
    second = save_checkpoint(state, tmp_path / "b" / "last.pt").read_bytes()
    assert first == second  # no temporary file name or time inside
    loaded = load_checkpoint(tmp_path / "b" / "last.pt")
    assert torch.equal(loaded["model"]["weight"], state["model"]["weight"])


def test_auto_runtime_options_use_a_gpu_and_leave_a_cpu_exact(monkeypatch):
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert loader_workers("auto", cpu, shards=16) == 0 and loader_workers(3, cpu, shards=16) == 3
    monkeypatch.setattr("pipeline.runtime.usable_cores", lambda: 16)
    assert loader_workers("auto", cuda, shards=64) == MAX_AUTO_WORKERS  # capped
    assert loader_workers("auto", cuda, shards=5) == 5  # a reader per shard at most
    assert loader_workers("auto", cuda, shards=64, world_size=4) == 3  # 4 cores per rank, one trains
    assert loader_workers("auto", cuda, shards=2, world_size=4) == 0
    assert not device_flag("auto", cpu, "bf16") and not device_flag("auto", cpu, "channels_last")
    assert device_flag("auto", cuda, "channels_last") and device_flag(True, cpu, "bf16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert not device_flag("auto", cuda, "bf16")
