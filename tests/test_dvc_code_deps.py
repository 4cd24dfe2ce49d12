"""Through DVC: an edit of the GAN code puts exactly train_gan out of date, and the rerun retrains."""

from __future__ import annotations

import json

import pytest

from pipeline.checkpoint import load_checkpoint
from tests._dvc_repo import dvc, make_project_repo
from tests._tiny import PIPELINE

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:dvc.*")]


def test_gan_code_edit_reruns_train_gan_only_and_retrains_it(tmp_path):
    repo = make_project_repo(tmp_path / "project", {**PIPELINE, "gan.steps": 2})
    dvc(repo, "repro", "train_gan", "train_mt@mt")
    assert json.loads(dvc(repo, "status", "--json").stdout).keys().isdisjoint({"train_gan", "train_mt@mt"})
    last = repo / "models" / "gan" / "last.pt"
    code_before = load_checkpoint(last)["fingerprint"]["code"]

    with (repo / "pipeline" / "train" / "gan" / "loop.py").open("a") as stream:
        stream.write("\n# an edit of the GAN training code\n")
    status = json.loads(dvc(repo, "status", "--json").stdout)
    assert "train_gan" in status and "train_mt@mt" not in status and "shard" not in status

    rerun = dvc(repo, "repro", "train_gan")
    output = rerun.stdout + rerun.stderr
    assert "Running stage 'train_gan'" in output
    assert "the training code changed; training afresh" in output  # not skipped as "finished"
    saved = load_checkpoint(last)
    assert saved["fingerprint"]["code"] != code_before and saved["engine"]["units_done"] == 2
    assert "train_gan" not in json.loads(dvc(repo, "status", "--json").stdout)
