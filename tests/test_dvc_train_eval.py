"""End to end through DVC: every stage up to evaluate in a throwaway repo, then a ratio experiment."""

from __future__ import annotations

import json

import pytest

from tests._dvc_repo import dvc, make_project_repo, run
from tests._tiny import PIPELINE

TINY_TRAINING = {**PIPELINE, "runtime.threads": 1}


def _stages_run(stdout: str) -> list[str]:
    return [line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage")]


@pytest.mark.slow
def test_repro_trains_every_variant_and_evaluates(tmp_path):
    repo = make_project_repo(tmp_path / "project", TINY_TRAINING)
    order = _stages_run(dvc(repo, "repro").stdout)
    assert sorted(order) == sorted(
        ["shard", "train_mt@st", "train_mt@mt", "train_gan", "synthesize@gan", "train_mgm", "synthesize@mgm",
         "train_mt@mgm", "evaluate"]
    )  # fmt: skip
    assert order[0] == "shard"
    assert order.index("evaluate") > max(order.index(f"train_mt@{v}") for v in ("st", "mt", "mgm"))
    chain = ["train_gan", "train_mgm", "synthesize@mgm", "train_mt@mgm"]
    assert [stage for stage in order if stage in chain] == chain
    for task in ("seg", "depth", "normal"):
        assert (repo / "models" / "mt" / "st" / task / "best.pt").is_file()
        assert (repo / "plots" / "train_mt" / "st" / f"{task}.csv").is_file()
    assert (repo / "models" / "mt" / "mt" / "last.pt").is_file()
    assert (repo / "models" / "mgm" / "generator.pt").is_file()
    assert (repo / "data" / "shards" / "synthetic" / "mgm" / "provenance.json").is_file()
    for name in ("mt", "mgm", "mgm-joint"):
        assert (repo / "reports" / f"grid_{name}.png").is_file()
    assert (repo / "reports" / "evaluation.md").is_file()

    metrics = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    shown = json.dumps(metrics)
    for name in ("mt", "st", "trivial", "mgm", "mgm-joint", "train_mt_mt", "train_mt_mgm", "train_mgm"):
        assert f"metrics/{name}.json" in shown
    assert '"delta_m"' in shown and '"best_epoch"' in shown

    plots = dvc(repo, "plots", "show", "--json").stdout
    assert "plots/train_mt/mt/mt.csv" in plots and "val_score" in plots

    assert _stages_run(dvc(repo, "repro").stdout) == []

    # the ratio reruns only what it affects
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "pipeline outputs"], repo)
    ratio = dvc(repo, "exp", "run", "-S", "mix.synthetic_ratio=0.5", "-n", "half")
    assert _stages_run(ratio.stdout) == ["train_mt@mgm", "evaluate"]
