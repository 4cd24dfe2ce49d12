"""Under torchrun every stage either trains once with DDP (train_mt: tests/test_train_mt.py) or
refuses before any work: two processes running one stage would race on the same output files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import params_to_dict
from tests._tiny import mt_params

REPO_ROOT = Path(__file__).resolve().parents[1]
SINGLE_PROCESS_STAGES = ("shard", "train_gan", "synthesize", "train_mgm", "evaluate")


@pytest.mark.parametrize("stage", SINGLE_PROCESS_STAGES)
def test_a_stage_without_ddp_refuses_two_processes_before_any_work(stage, tmp_path):
    params = mt_params(tmp_path / "shards", tmp_path)  # every output under tmp_path
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params_to_dict(params)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_ROOT)}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", f"stages.{stage}", "--params", str(params_file), "--quiet",
    ]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert 1 <= result.stderr.count("does not train with DDP") <= 2  # each rank says it, unless stopped first
    assert sorted(path.name for path in tmp_path.iterdir()) == ["params.yaml"]  # nothing written
