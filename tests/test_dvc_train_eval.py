"""End to end through DVC: shard -> train_mt@st -> train_mt@mt -> evaluate in a throwaway repo."""

from __future__ import annotations

import json

import pytest

from tests._dvc_repo import dvc, make_project_repo

TINY_TRAINING = {
    "data.rooms.train": 8,
    "model.encoder": "halfwidth34",
    "model.encoder_widths": [8, 8, 16, 16],
    "model.decoder_channels": [16, 8, 8, 8, 8],
    "train_mt.epochs": 1,
    "train_mt.batch_size": 4,
    "train_mt.threads": 1,
    "train_mt.device": "cpu",
    "evaluate.device": "cpu",
    "evaluate.grid_samples": 2,
}


@pytest.mark.slow
def test_repro_trains_both_variants_and_evaluates(tmp_path):
    repo = make_project_repo(tmp_path / "project", TINY_TRAINING)
    first = dvc(repo, "repro", "evaluate")
    order = [line for line in first.stdout.splitlines() if line.startswith("Running stage")]
    assert order == [
        "Running stage 'shard':",
        "Running stage 'train_mt@st':",
        "Running stage 'train_mt@mt':",
        "Running stage 'evaluate':",
    ]
    for task in ("seg", "depth", "normal"):
        assert (repo / "models" / "mt" / "st" / task / "best.pt").is_file()
        assert (repo / "plots" / "train_mt" / "st" / f"{task}.csv").is_file()
    assert (repo / "models" / "mt" / "mt" / "last.pt").is_file()
    assert (repo / "reports" / "grid_mt.png").is_file() and (repo / "reports" / "evaluation.md").is_file()

    metrics = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    shown = json.dumps(metrics)
    for name in ("metrics/mt.json", "metrics/st.json", "metrics/trivial.json", "metrics/train_mt_mt.json"):
        assert name in shown
    assert '"delta_m"' in shown and '"best_epoch"' in shown

    plots = dvc(repo, "plots", "show", "--json").stdout
    assert "plots/train_mt/mt/mt.csv" in plots and "val_score" in plots

    again = dvc(repo, "repro", "evaluate")
    assert "Running stage" not in again.stdout
