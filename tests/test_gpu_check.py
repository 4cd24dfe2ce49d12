"""The device check's CPU dry run: the script a GPU machine would run, end to end at toy size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_dry_run_measures_every_part_and_ends_with_one_json_line(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = subprocess.run(
        ["bash", str(REPO_ROOT / "bench" / "gpu_check.sh"), "--cpu"],
        env={
            "OUT": str(tmp_path),
            "OMP_NUM_THREADS": "1",
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    headline = json.loads(result.stdout.strip().splitlines()[-1])
    assert headline["benchmark"] == "gpu_check" and headline["device"] == "cpu (dry run)"
    assert headline["ratio"] > 0 and 0.5 < headline["bf16_over_fp32_loss"] < 2  # bf16 loss near fp32's
    assert headline["gan_g_steps_per_s"] > 0 and headline["mgm_ratio_iteration_over_dense"] > 1
    full = json.loads(out.read_text())
    for mode in ("fp32", "bf16_channels_last"):
        assert full["train_mt"][f"{mode}_memory_images_per_s"] > 0
        assert full["train_mt"][f"{mode}_loader_images_per_s"] > 0
    assert {"dense", "gan"} <= set(full["mgm_iteration"]["median_ms_per_step"])
