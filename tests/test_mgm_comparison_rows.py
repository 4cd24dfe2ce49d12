"""The comparison script's result rows carry what docs/results.md reads: each task's primary
metric, normals' L1 and every Δm the evaluation computed."""

from __future__ import annotations

import numpy as np
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


def _rows():
    """Three seeds of MT and full MGM at one fraction, with hand-picked metrics."""
    rows = []
    for seed, (mt_delta, mgm_delta, mt_miou, mgm_miou) in enumerate(
        [(0.01, 0.05, 0.10, 0.12), (0.02, 0.03, 0.11, 0.12), (0.00, 0.07, 0.09, 0.13)]
    ):
        for variant, delta, miou in [("mt", mt_delta, mt_miou), ("mgm", mgm_delta, mgm_miou)]:
            rows.append({"fraction": 0.5, "seed": seed, "variant": variant, "test_images": 1000,
                         "seg": miou, "depth": 0.5, "normal": 30.0, "normal_l1": 0.2,
                         "delta_m": delta, "delta_m_mt": delta - mt_delta})  # fmt: skip
    return rows


def test_the_raw_rows_carry_the_issue_columns_in_order(tmp_path):
    import csv

    from bench.mgm_comparison import CSV_COLUMNS, write_csv

    path = tmp_path / "rows.csv"
    write_csv(_rows(), path)
    with path.open() as handle:
        reader = csv.DictReader(handle)
        read = list(reader)
    assert reader.fieldnames[: len(CSV_COLUMNS)] == [
        "fraction", "seed", "variant", "seg_miou", "depth_mae", "normal_mean_angle", "normal_l1",
        "test_images",
    ]  # fmt: skip
    assert len(read) == 6 and read[1]["variant"] == "mgm" and float(read[1]["seg_miou"]) == 0.12
    assert float(read[1]["delta_m"]) == 0.05


def test_the_report_gives_paired_differences_against_mt_with_t_intervals():
    from scipy import stats

    from bench.mgm_comparison import markdown

    text = markdown(_rows(), ["seg", "depth", "normal"])
    differences = np.array([4.0, 1.0, 7.0])  # Δm of mgm against mt of its seed, %
    half = stats.t.ppf(0.975, 2) * differences.std(ddof=1) / np.sqrt(3)
    line = next(line for line in text.splitlines() if line.startswith("| MGM, full") and "[" in line)
    assert f"+4.00 [{4 - half:+.2f}, {4 + half:+.2f}]" in line
    assert "+0.0233" in line  # the mean paired mIoU gain (0.02, 0.01, 0.04)
    assert "3 seeds, 1000 test images" in text


def test_a_missing_pretrained_gan_is_an_error_naming_the_file(tmp_path, capsys):
    from bench.mgm_comparison import main

    missing = tmp_path / "gan-{fraction}" / "best.pt"
    code = main(["--gan", str(missing), "--fractions", "0.25", "--work", str(tmp_path / "work")])
    assert code == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "gan-0.25" / "best.pt") in error and "label fraction 0.25" in error
    assert not (tmp_path / "work").exists()


def test_mgm_shards_without_the_full_run_is_refused():
    from bench.mgm_comparison import parse_args

    with pytest.raises(SystemExit) as raised:
        parse_args(["--variants", "mt", "mgm-shards"])
    assert raised.value.code == 2


def test_the_plateau_is_the_first_epoch_near_the_final_level():
    from bench.mt_plateau import curve_rows, plateau_epoch, trailing_mean

    assert trailing_mean([0.0, -6.0, -3.0], 2) == [0.0, -3.0, -4.5]
    curve = [-30.0, -12.0, -5.0, -1.5, 1.0, -0.5]
    assert plateau_epoch(curve, 2.0) == 4
    assert plateau_epoch(curve, 2.0, smooth=2) == 5  # (-1.5 + 1.0) / 2 is the first within 2 points
    assert plateau_epoch([-9.0, -8.0], 2.0) == 2  # never within: the last epoch
    points = [{"epoch": 1, "seg": 0.05, "depth": 0.60}, {"epoch": 2, "seg": 0.10, "depth": 0.50},
              {"epoch": 3, "seg": 0.10, "depth": 0.50}]  # fmt: skip
    rows = curve_rows({0: points}, ["seg", "depth"], tail=2)
    assert rows[2]["delta_m_vs_final"] == pytest.approx(0.0)
    assert rows[0]["delta_m_vs_final"] == pytest.approx(100 * (-0.5 - 0.2) / 2)
