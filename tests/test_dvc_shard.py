"""End to end through DVC in a throwaway git repo: repro, nothing to do, a params change reruns."""

from __future__ import annotations

import json

import pytest

from tests._dvc_repo import dvc, make_project_repo, set_params
from tests._files import file_hashes


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    return make_project_repo(tmp_path_factory.mktemp("dvc") / "project")


@pytest.mark.slow
def test_repro_is_reproducible_and_tracks_params(repo):
    first = dvc(repo, "repro", "shard")
    assert "Running stage 'shard'" in first.stdout
    shards = repo / "data" / "shards" / "real"
    names = sorted(p.name for p in shards.iterdir())
    assert names == [
        "manifest.parquet",
        "reference-000000.tar",  # held-out rooms for the GAN's metrics only
        "reference-000001.tar",
        "summary.json",
        "test-000000.tar",
        "test-000001.tar",
        "train-000000.tar",
        "train-000001.tar",
        "val-000000.tar",
        "val-000001.tar",
    ]
    hashes = file_hashes(shards)

    again = dvc(repo, "repro", "shard")
    assert "Running stage" not in again.stdout
    assert "up to date" in again.stdout.lower()

    forced = dvc(repo, "repro", "--force", "shard")
    assert "Running stage 'shard'" in forced.stdout
    assert file_hashes(shards) == hashes

    detail = json.loads((repo / "metrics" / "detail" / "shard.json").read_text())  # not in `dvc metrics show`
    assert detail["samples"]["train"] == 8 and "pixel_frequency" in detail

    set_params(repo, {"data.label_fraction": 0.5})
    status = dvc(repo, "status")
    assert "shard:" in status.stdout and "params.yaml" in status.stdout and "modified" in status.stdout
    rerun = dvc(repo, "repro", "shard")
    assert "Running stage 'shard'" in rerun.stdout
    summary = json.loads((shards / "summary.json").read_text())
    assert summary["splits"]["train"]["samples"] == 4 and summary["splits"]["weak"]["samples"] == 4
    assert (repo / "dvc.lock").is_file()


@pytest.mark.slow
def test_a_failed_repro_leaves_the_earlier_outputs_as_they_were(tmp_path):
    """DVC removes a stage's non-persistent outputs before it runs the stage: a failed run would then
    lose the earlier complete output (and metrics/detail/shard.json, which the cache does not hold)."""
    repo = make_project_repo(tmp_path / "project")
    dvc(repo, "repro", "shard")
    before = {**file_hashes(repo / "data" / "shards"), **file_hashes(repo / "metrics")}
    set_params(repo, {"data.source": "nyuv2-mat", "data.path": "data/sources/absent.mat"})
    failed = dvc(repo, "repro", "shard", check=False)
    assert failed.returncode != 0 and "absent.mat" in failed.stdout + failed.stderr
    assert {**file_hashes(repo / "data" / "shards"), **file_hashes(repo / "metrics")} == before
