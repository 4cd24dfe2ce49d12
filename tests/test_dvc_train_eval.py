"""End to end through DVC: every stage up to evaluate in a throwaway repo, then a ratio experiment."""

from __future__ import annotations

import json

import pytest
import torch

from tests._dvc_repo import dvc, make_project_repo, run
from tests._tiny import PIPELINE

TINY_TRAINING = {
    **PIPELINE,
    "runtime.threads": 1,
    "gan.fid_extractor": "inception",
    "synthesize.fid_extractor": "inception",
}
"""Inception (4-8 images per side): the plots and the metrics table name its columns (``kid``, ``fid``)."""


def _stages_run(stdout: str) -> list[str]:
    return [line.split("'")[1] for line in stdout.splitlines() if line.startswith("Running stage")]


@pytest.mark.slow
def test_repro_trains_every_variant_and_evaluates(tmp_path):
    repo = make_project_repo(tmp_path / "project", TINY_TRAINING)
    order = _stages_run(dvc(repo, "repro").stdout)
    assert sorted(order) == sorted(
        ["shard", "train_mt@st", "train_mt@mt", "train_gan", "synthesize@gan", "train_mgm", "synthesize@mgm",
         "train_mt@mgm-shards", "evaluate"]
    )  # fmt: skip
    assert order[0] == "shard"
    assert order.index("evaluate") > max(order.index(f"train_mt@{v}") for v in ("st", "mt", "mgm-shards"))
    chain = ["train_gan", "train_mgm", "synthesize@mgm", "train_mt@mgm-shards"]
    assert [stage for stage in order if stage in chain] == chain
    for task in ("seg", "depth", "normal"):
        assert (repo / "models" / "mt" / "st" / task / "best.pt").is_file()
        assert (repo / "plots" / "train_mt" / "st" / f"{task}.csv").is_file()
    assert (repo / "models" / "mt" / "mt" / "last.pt").is_file()
    assert (repo / "models" / "mgm" / "generator.pt").is_file()
    assert (repo / "data" / "shards" / "synthetic" / "mgm" / "provenance.json").is_file()
    for name in ("mt", "mgm-shards", "mgm"):
        assert (repo / "reports" / "grids" / f"grid_{name}.png").is_file()
    assert (repo / "reports" / "evaluation.md").is_file()

    # dvc metrics show: the flat headline of each variant and of the generators, a table a terminal holds
    metrics = json.loads(dvc(repo, "metrics", "show", "--json").stdout)
    shown = metrics[""]["data"]
    assert sorted(shown) == sorted(
        f"metrics/{name}.json" for name in ("train_gan", "trivial", "st", "mt", "mgm-shards", "mgm")
    )
    heads = {"seg_miou", "depth_mae", "normal_mean_angle", "dm_st", "dm_mt"}
    for name in ("st", "mt", "mgm-shards", "mgm"):
        assert set(shown[f"metrics/{name}.json"]["data"]) == heads
    assert shown["metrics/mt.json"]["data"]["dm_mt"] == 0.0
    assert {"fid", "kid", "scene_acc", "floor_kid", "blur_half_fid", "real_scene_acc"} <= set(
        shown["metrics/train_gan.json"]["data"]
    )
    table = dvc(repo, "metrics", "show").stdout.splitlines()
    assert max(len(line) for line in table) <= 210, table[0]  # "about 200": 14 columns, 205 measured
    assert (repo / "metrics" / "detail" / "train_mt_mt.json").is_file()  # the detail stays, unshown

    # dvc plots show: every plot resolves (x and y are columns of the CSVs), images included
    plots = json.loads(dvc(repo, "plots", "show", "--json").stdout)
    assert plots.get("errors", []) == []
    drawn = set(plots["data"])
    assert {"gan_kid", "gan_fid", "gan_scene", "val_seg_miou", "mgm_losses"} <= drawn
    assert "plots/train_mt/mt/mt.csv" in drawn and "reports/grids/grid_mt.png" in drawn
    assert any(name.startswith("models/gan/samples/") for name in drawn)

    assert _stages_run(dvc(repo, "repro").stdout) == []

    # the ratio reruns only what it affects
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "pipeline outputs"], repo)
    ratio = dvc(repo, "exp", "run", "-S", "mix.synthetic_ratio=0.5", "-n", "half")
    assert _stages_run(ratio.stdout) == ["train_mt@mgm-shards", "evaluate"]

    # the architecture switch retrains every multi-task network and what reads them; never the shards,
    # the GAN or the GAN's synthetic set (MTI-Net's scales sized for 32 px)
    mti = dvc(
        repo, "exp", "run", "-n", "mti", "-S", "model.architecture=mti",
        "-S", "model.mti.scales=[2, 4, 8, 16]", "-S", "model.mti.channels=[4, 8, 8, 16]",
    )  # fmt: skip
    assert sorted(_stages_run(mti.stdout)) == sorted(
        ["train_mt@st", "train_mt@mt", "train_mgm", "synthesize@mgm", "train_mt@mgm-shards", "evaluate"]
    )
    state = torch.load(repo / "models" / "mt" / "mt" / "best.pt", map_location="cpu", weights_only=False)
    assert state["model_config"]["architecture"] == "mti"
