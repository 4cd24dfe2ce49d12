"""The comparison script's result rows carry what docs/results.md reads: each task's primary
metric, normals' L1 and every Δm the evaluation computed."""

from __future__ import annotations

import pytest

from bench.mgm_comparison import primary
from pipeline.evaluation import DELTA_VARIANTS


def test_a_row_holds_primary_metrics_normal_l1_and_every_delta_m():
    result = {
        "seg": {"miou": 0.31, "pixel_acc": 0.6},
        "depth": {"mae": 0.8, "rmse": 1.1},
        "normal": {"mean_angle": 30.5, "l1": 0.21},
        **{key: 0.001 * (index + 1) for index, key in enumerate(DELTA_VARIANTS)},
    }
    row = primary(result, ["seg", "depth", "normal"])
    assert row["seg"] == pytest.approx(0.31)
    assert row["depth"] == pytest.approx(0.8)
    assert row["normal"] == pytest.approx(30.5)
    assert row["normal_l1"] == pytest.approx(0.21)
    assert "delta_m" in DELTA_VARIANTS and "delta_m_mt_normal_l1" in DELTA_VARIANTS
    assert {key: row[key] for key in DELTA_VARIANTS} == pytest.approx(
        {key: 0.001 * (index + 1) for index, key in enumerate(DELTA_VARIANTS)}
    )


def test_a_row_without_normals_has_no_normal_l1():
    row = primary({"seg": {"miou": 0.4}, "depth": {"mae": 0.7}}, ["seg", "depth"])
    assert row == {"seg": pytest.approx(0.4), "depth": pytest.approx(0.7)}
