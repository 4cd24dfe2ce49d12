"""Sharing a dataset version end to end: repro, a ratio experiment, a push, a pull in a fresh clone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from flows.dvc_stages import discover_stages
from tests._dvc_repo import dvc, run, set_params
from tests._files import file_hashes
from tests._flow_projects import PROBE, RATIO_PARAM, probe_stage, tiny_pipeline_repo

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:dvc.*")]


def _commit(repo: Path, message: str) -> str:
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)
    return run(["git", "rev-parse", "HEAD"], repo).stdout.strip()


def _has_ratio_param(repo: Path) -> bool:
    return "synthetic_ratio" in (yaml.safe_load((repo / "params.yaml").read_text()).get("mix") or {})


def test_a_dataset_version_round_trips_through_a_dvc_remote(tmp_path):
    origin = tiny_pipeline_repo(tmp_path / "origin")
    stages = {stage.name: stage for stage in discover_stages(origin)}
    target = (
        "synthesize@gan" if "synthesize@gan" in stages else "shard"
    )  # the synthetic shards once they exist
    dataset = next(out for out in stages[target].outs if out not in stages[target].metrics)
    artifact = "synthetic-gan" if target == "synthesize@gan" else "real-shards"

    dvc(origin, "repro", target)
    dvc(origin, "remote", "add", "-d", "local", str(tmp_path / "dvc-store"))
    version = _commit(origin, f"dataset version from {target}")
    run(["git", "tag", "-a", f"{artifact}@v0.1.0", "-m", f"{artifact} v0.1.0"], origin)  # a named version
    pushed = dvc(origin, "push")
    assert "pushed" in pushed.stdout.lower()
    hashes = file_hashes(origin / dataset)
    assert any(name.endswith(".tar") for name in hashes) and "manifest.parquet" in hashes

    # a ratio experiment: on the real param once the MGM stages define it, else on a test-only stage
    exp_target: list[str] = []
    if not _has_ratio_param(origin):
        (origin / "probe.py").write_text(PROBE)
        set_params(origin, {RATIO_PARAM: 0.0})
        pipeline = yaml.safe_load((origin / "dvc.yaml").read_text())
        pipeline["stages"]["ratio_probe"] = probe_stage([dataset])
        (origin / "dvc.yaml").write_text(yaml.safe_dump(pipeline, sort_keys=False))
        dvc(origin, "repro", "ratio_probe")
        _commit(origin, "test-only stage following the ratio")
        exp_target = ["ratio_probe"]
    dvc(origin, "exp", "run", "-S", f"{RATIO_PARAM}=0.5", "-n", "ratio-half", *exp_target)
    dvc(origin, "push")
    assert file_hashes(origin / dataset) == hashes  # the ratio changes training, not the dataset

    # a fresh clone: git clone + dvc pull gives byte-identical shards
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(origin), str(clone)], tmp_path)
    assert not (clone / dataset).exists()
    dvc(clone, "pull", dataset)
    assert file_hashes(clone / dataset) == hashes

    # without a clone: dvc get of the version and dvc artifacts get by name
    dvc(tmp_path, "get", str(origin), dataset, "--rev", version, "-o", str(tmp_path / "got"))
    assert file_hashes(tmp_path / "got") == hashes
    dvc(tmp_path, "artifacts", "get", str(origin), artifact, "--rev", "v0.1.0", "-o", str(tmp_path / "art"))
    assert file_hashes(tmp_path / "art") == hashes

    # the experiment travels too, and compares against the baseline
    dvc(clone, "exp", "pull", "origin", "ratio-half")
    shown = json.loads(dvc(clone, "exp", "show", "--json").stdout)
    experiments = [rev for base in shown for group in base.get("experiments") or [] for rev in group["revs"]]
    half = next(rev for rev in experiments if rev["name"] == "ratio-half")
    assert half["data"]["params"]["params.yaml"]["data"]["mix"]["synthetic_ratio"] == 0.5
    diff = json.loads(dvc(clone, "metrics", "diff", "HEAD", half["rev"], "--json").stdout)
    if exp_target:
        assert diff["metrics/probe.json"]["ratio"] == {"old": 0.0, "new": 0.5, "diff": 0.5}
