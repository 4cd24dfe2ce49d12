"""evaluate: metrics per variant and the trivial reference, grids, report with Δm; mismatched checkpoints."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from pipeline.checkpoint import CheckpointError
from pipeline.data.reader import ShardDataset
from pipeline.evaluation import TrivialPredictor, evaluate
from pipeline.train.engine import COMPLETE_MARKER
from pipeline.train.multitask import train_mt
from tests._tiny import make_shards, mt_params


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    shards = make_shards(root / "real", train=8, per_shard=4)
    params = mt_params(shards, root, "train_mt.epochs=1")
    for variant in ("st", "mt"):
        train_mt(params, variant, progress=False)
    return shards, root


def test_evaluate_writes_metrics_grids_and_report(trained):
    shards, root = trained
    params = mt_params(shards, root, "train_mt.epochs=1")
    results = evaluate(params, progress=False, metrics_dir=root / "metrics")
    assert list(results) == ["trivial", "st", "mt"]
    for name in results:
        detail = json.loads((root / "reports" / "metrics" / f"{name}.json").read_text())
        assert set(detail) == {
            "seg", "depth", "normal", "delta_m", "delta_m_mt", "delta_m_normal_l1", "delta_m_mt_normal_l1"
        }  # fmt: skip
        assert set(detail["seg"]) == {"miou", "pixel_acc", "loss"}
        assert set(detail["depth"]) == {"mae", "abs_rel", "rmse", "delta1", "loss"}
        assert set(detail["normal"]) == {
            "mean_angle", "median_angle", "within_11_25", "within_22_5", "within_30", "l1", "loss"
        }  # fmt: skip
        headline = json.loads((root / "metrics" / f"{name}.json").read_text())  # what dvc metrics shows
        assert headline == {
            "seg_miou": pytest.approx(detail["seg"]["miou"], rel=1e-3),
            "depth_mae": pytest.approx(detail["depth"]["mae"], rel=1e-3),
            "normal_mean_angle": pytest.approx(detail["normal"]["mean_angle"], rel=1e-3),
            "dm_st": pytest.approx(100 * detail["delta_m"], abs=0.006),
            "dm_mt": pytest.approx(100 * detail["delta_m_mt"], abs=0.006),
        }
    assert results["st"]["delta_m"] == 0.0 and results["mt"]["delta_m_mt"] == 0.0
    assert results["mt"]["delta_m"] == pytest.approx(_delta_m(results["mt"], results["st"], "mean_angle"))
    assert results["st"]["delta_m_mt"] == pytest.approx(_delta_m(results["st"], results["mt"], "mean_angle"))
    assert results["mt"]["delta_m_normal_l1"] == pytest.approx(_delta_m(results["mt"], results["st"], "l1"))
    assert results["mt"]["delta_m_mt_normal_l1"] == 0.0 and 0 < results["mt"]["normal"]["l1"] < 1
    for variant in ("st", "mt"):
        grid = Image.open(root / "reports" / "grids" / f"grid_{variant}.png")
        # columns: input + truth/prediction per task; rows: 2 fixed samples; 96 px cells + 2 px gaps
        assert grid.size == (7 * 98, 16 + 2 * 98)
    report = (root / "reports" / "evaluation.md").read_text()
    assert "| trivial |" in report and "| mt |" in report and "Δm" in report
    assert f"| mt | {100 * results['mt']['delta_m']:+.2f} | +0.00 |" in report
    assert f"| st | +0.00 | {100 * results['st']['delta_m_mt']:+.2f} |" in report


def test_trivial_predictor_uses_train_statistics(trained):
    shards, _ = trained
    counts = torch.zeros(13)
    depths, normals = [], torch.zeros(3, dtype=torch.float64)
    for item in ShardDataset(shards, "train"):
        labels = item["seg"][item["seg"] != 255]
        counts += torch.bincount(labels, minlength=13)[:13]
        depths.append(item["depth"][item["depth_valid"]])
        normals += item["normal"].double().sum(dim=(1, 2))
    trivial = TrivialPredictor.from_split(shards, "train", 13)
    out = trivial(torch.zeros(2, 3, 8, 8))
    assert (out["seg"].argmax(1) == int(counts.argmax())).all()
    assert out["depth"][0, 0, 0, 0] == pytest.approx(float(torch.cat(depths).double().mean()), rel=1e-5)
    assert torch.allclose(out["normal"][0, :, 0, 0], torch.nn.functional.normalize(normals, dim=0).float())


def test_checkpoints_that_do_not_match_the_params_are_refused(trained):
    shards, root = trained
    fewer_tasks = mt_params(shards, root, "model.tasks=[seg, depth]", "train_mt.variants=[mt]")
    with pytest.raises(CheckpointError, match=r"mt/best\.pt holds tasks \['seg', 'depth', 'normal'\]"):
        evaluate(fewer_tasks, progress=False, metrics_dir=root / "m2")
    wider = mt_params(shards, root, "model.decoder_channels=[16,8,8,8,4]", "train_mt.variants=[mt]")
    with pytest.raises(
        CheckpointError,
        match=r"best\.pt was trained with model\.decoder_channels \[16, 8, 8, 8, 8\] \(params: \[16, 8",
    ):
        evaluate(wider, progress=False, metrics_dir=root / "m2")
    mti = mt_params(
        shards, root, "model.architecture=mti", "model.mti.scales=[2,4,8,16]", "train_mt.variants=[mt]"
    )
    with pytest.raises(CheckpointError, match=r"model\.architecture shared \(params: mti\)"):
        evaluate(mti, progress=False, metrics_dir=root / "m2")
    unfinished = root / "models" / "mt" / COMPLETE_MARKER
    saved = unfinished.read_bytes()
    unfinished.unlink()
    try:
        with pytest.raises(CheckpointError, match="training has not finished"):
            evaluate(
                mt_params(shards, root, "train_mt.variants=[mt]"), progress=False, metrics_dir=root / "m2"
            )
    finally:
        unfinished.write_bytes(saved)


def _delta_m(value, reference, normal_metric):
    """Δm written out by hand: mIoU up, depth MAE and the normals metric down, over 3 tasks."""
    return (
        (value["seg"]["miou"] - reference["seg"]["miou"]) / reference["seg"]["miou"]
        - (value["depth"]["mae"] - reference["depth"]["mae"]) / reference["depth"]["mae"]
        - (value["normal"][normal_metric] - reference["normal"][normal_metric])
        / reference["normal"][normal_metric]
    ) / 3
