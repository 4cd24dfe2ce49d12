"""Synthesis: reproducible shards, counts and labels, provenance, and each bad input's error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pipeline.checkpoint import CheckpointError, load_checkpoint
from pipeline.config import load_params
from pipeline.data.manifest import read_manifest
from pipeline.data.reader import ShardDataset
from pipeline.data.sharding import shard_dataset
from pipeline.errors import OutputExistsError, ParamsError
from pipeline.hashing import file_sha256, shard_set_fingerprint
from pipeline.synthesis import synthesize
from pipeline.train.gan.loop import train_gan
from stages.cli import main as mgm_main
from tests._files import file_hashes
from tests._tiny import TinyProject, gan_params, gan_shards


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    gan_shards(root)
    train_gan(gan_params(root, "gan.steps=1"), progress=False)
    return root


def test_same_checkpoint_seed_and_params_give_identical_bytes(root):
    params = gan_params(root, "synthesize.count=10", "synthesize.batch_size=3")
    first = synthesize(params, progress=False)
    target = root / "synthetic" / "gan"
    hashes = file_hashes(target)
    assert set(hashes) == {
        "manifest.parquet",
        "provenance.json",
        "summary.json",
        "synthetic-000000.tar",
        "synthetic-000001.tar",
    }
    second = synthesize(params, progress=False)
    assert file_hashes(target) == hashes and first == second
    assert first["checkpoint"]["sha256"] == file_sha256(root / "gan" / "best.pt")
    assert first["checkpoint"]["step"] == 1 and first["count"] == 10 and first["seed"] == 0
    assert sum(first["count_per_scene"].values()) == 10
    # traceable from the dataset alone: the real shards by content, the generator's params and scores
    assert first["real_shards"]["content_sha256"] == shard_set_fingerprint(root / "real")
    assert first["generator"]["train"]["conditioning"] == "shared"
    evaluation = first["generator"]["evaluation"]
    assert evaluation["step"] == 1 and evaluation["n_images"] == 4
    assert {"fd_tiny", "kd_tiny", "scene_acc", "floor_fd_tiny", "real_scene_acc"} <= set(evaluation)
    other_seed = gan_params(root, "synthesize.count=10", "synthesize.seed=1", "synthesize.name=seed1")
    synthesize(other_seed, progress=False)
    assert file_hashes(root / "synthetic" / "seed1")["synthetic-000000.tar"] != hashes["synthetic-000000.tar"]


def test_shards_hold_image_scene_and_meta_only(root):
    params = gan_params(root, "synthesize.count=7", "synthesize.name=read")
    provenance = synthesize(params, progress=False)
    items = list(ShardDataset(root / "synthetic" / "read", "synthetic"))
    assert len(items) == 7
    for item in items:
        assert set(item) == {"rgb", "scene", "key", "meta"}
        assert item["rgb"].shape == (3, 32, 32)
        assert item["meta"]["source"] == "synthetic" and item["meta"]["split"] == "synthetic"
        assert item["meta"]["scene_name"] == provenance["scene_names"][int(item["scene"])]
    manifest = read_manifest(root / "synthetic" / "read")
    assert manifest.num_rows == 7 and set(manifest.column("split").to_pylist()) == {"synthetic"}
    counts = np.bincount([int(i["scene"]) for i in items], minlength=6)
    assert counts.tolist() == list(provenance["count_per_scene"].values())


def test_relative_count_real_and_balanced_labels(root):
    real = json.loads((root / "real" / "summary.json").read_text())["splits"]["train"]["scenes"]
    relative = synthesize(
        gan_params(root, "synthesize.count_relative=2", "synthesize.name=rel"), progress=False
    )
    assert relative["count"] == 24  # 2 x 12 real training images
    assert relative["count_per_scene"] == {name: 2 * real.get(name, 0) for name in relative["scene_names"]}
    balanced = synthesize(
        gan_params(root, "synthesize.count=12", "synthesize.labels=balanced", "synthesize.name=bal"),
        progress=False,
    )
    assert set(balanced["count_per_scene"].values()) == {2}
    only = synthesize(
        gan_params(
            root,
            "synthesize.count=5",
            "synthesize.scenes=[office]",
            "synthesize.labels=balanced",
            "synthesize.name=office",
        ),
        progress=False,
    )
    assert only["count_per_scene"]["office"] == 5 and sum(only["count_per_scene"].values()) == 5


def test_mismatched_checkpoint_is_a_clear_error(root):
    for override, key in (("gan.g_width=8", "g_width"), ("gan.latent_dim=32", "latent_dim")):
        with pytest.raises(CheckpointError, match=rf"does not match the params \(.*{key}: checkpoint"):
            synthesize(
                gan_params(root, override, "synthesize.count=2", "synthesize.name=bad"), progress=False
            )
    wide = load_params(None, [f"shard.out={root / 'real64'}", "data.resolution=64", "data.rooms.train=6",
                              "data.rooms.val=2", "data.rooms.test=2", "shard.workers=0"])  # fmt: skip
    shard_dataset(wide, progress=False)  # the 32 px generator against 64 px real shards
    with pytest.raises(CheckpointError, match="resolution: checkpoint 32 vs params 64"):
        synthesize(
            gan_params(root, f"shard.out={root / 'real64'}", "synthesize.count=2", "synthesize.name=bad"),
            progress=False,
        )
    assert not (root / "synthetic" / "bad").exists()
    # data.resolution is the shard stage's: later stages read the shard set's own resolution
    params = gan_params(root, "data.resolution=64", "synthesize.count=2", "synthesize.name=res")
    assert synthesize(params, progress=False)["count"] == 2


def test_bad_counts_and_scene_names(root, capsys):
    with pytest.raises(ParamsError, match=r"synthesize\.count: Input should be greater than 0"):
        gan_params(root, "synthesize.count=0")
    with pytest.raises(ParamsError, match=r"synthesize\.count_relative"):
        gan_params(root, "synthesize.count_relative=-1")
    with pytest.raises(ParamsError, match=r"unknown scene label\(s\) \['garage'\]; known: bedroom, kitchen"):
        synthesize(gan_params(root, "synthesize.count=2", "synthesize.scenes=[garage]"), progress=False)
    code = mgm_main(["synthesize", "--set", "synthesize.count=-3"])
    assert code == 2 and "synthesize.count" in capsys.readouterr().err


def test_a_different_version_needs_force_and_the_old_set_stays(root):
    first = gan_params(root, "synthesize.count=6", "synthesize.name=versioned")
    synthesize(first, progress=False)
    target = root / "synthetic" / "versioned"
    before = file_hashes(target)
    other = gan_params(root, "synthesize.count=6", "synthesize.seed=5", "synthesize.name=versioned")
    with pytest.raises(OutputExistsError, match=r"versioned holds synthetic dataset version .* --force"):
        synthesize(other, progress=False)
    assert file_hashes(target) == before
    replaced = synthesize(other, force=True, progress=False)
    assert json.loads((target / "provenance.json").read_text())["version"] == replaced["version"]
    assert file_hashes(target) != before
    user_folder = root / "synthetic" / "mine"
    user_folder.mkdir()
    (user_folder / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="was not written by this stage"):
        synthesize(gan_params(root, "synthesize.count=2", "synthesize.name=mine"), progress=False)
    assert (user_folder / "notes.txt").read_text() == "mine"


def test_stage_writes_metrics_with_per_scene_distances(root, tmp_path):
    metrics = tmp_path / "synth.json"
    overrides = [f"{k}={v}" for k, v in (("synthesize.count", 12), ("synthesize.name", "stage"))]
    args = ["synthesize", "--params", str(root / "none.yaml"), "--metrics", str(metrics), "--quiet"]
    # params come from a file written here, plus --set overrides
    (root / "none.yaml").write_text("{}\n")

    sets = TinyProject(root, root / "real").overrides("synthesize.fid_split=test", *overrides)
    assert mgm_main(args + [x for s in sets for x in ("--set", s)]) == 0
    result = json.loads(metrics.read_text())
    assert result["count"] == 12
    comparison = result["vs_real_test"]
    assert comparison["extractor"] == "tiny" and comparison["fd_tiny"] > 0 and "fid" not in comparison
    assert comparison["images"] == [12, 8]


@pytest.mark.slow
def test_dvc_repro_trains_the_gan_and_synthesizes(tmp_path):
    from tests._dvc_repo import dvc, make_project_repo, run

    tiny = {
        "gan.g_width": 4,
        "gan.d_width": 4,
        "gan.latent_dim": 16,
        "gan.attention_resolution": 16,
        "gan.batch_size": 4,
        "gan.steps": 2,
        "gan.eval_every": 1,
        "gan.eval_images": 4,
        "gan.fid_extractor": "tiny",
        "gan.grid_columns": 1,
        "runtime.device": "cpu",
        "synthesize.count": 6,
        "synthesize.fid_extractor": "tiny",
    }
    repo = make_project_repo(tmp_path / "project", tiny)
    first = dvc(repo, "repro", "synthesize@gan")
    assert "Running stage 'train_gan'" in first.stdout and "Running stage 'synthesize@gan'" in first.stdout
    target = repo / "data" / "shards" / "synthetic" / "gan"
    hashes = file_hashes(target)
    assert "synthetic-000000.tar" in hashes
    provenance = json.loads((target / "provenance.json").read_text())
    best_step = load_checkpoint(repo / "models" / "gan" / "best.pt")["step"]
    assert provenance["count"] == 6 and provenance["checkpoint"]["step"] == best_step in (1, 2)
    head = run(["git", "rev-parse", "HEAD"], repo).stdout.strip()
    assert provenance["git"] == {"commit": head, "dirty": False}  # dvc.lock changed, the code did not
    again = dvc(repo, "repro", "synthesize@gan")
    assert "Running stage" not in again.stdout
    shown = json.loads(dvc(repo, "metrics", "show", "--json").stdout)[""]["data"]
    assert "floor_fd_tiny" in shown["metrics/train_gan.json"]["data"]
    detail = json.loads((repo / "metrics" / "detail" / "synthesize_gan.json").read_text())  # not shown
    assert detail["count"] == 6 and "kd_tiny" in detail["vs_real_test"]
    history = (repo / "plots" / "train_gan" / "history.csv").read_text().splitlines()
    assert len(history) == 3 and history[0].startswith("step,")
    forced = dvc(repo, "repro", "--force", "synthesize@gan", "--single-item")
    assert "Running stage 'synthesize@gan'" in forced.stdout
    assert file_hashes(target) == hashes


def test_two_independent_runs_give_byte_identical_checkpoints_and_synthetic_sets(tmp_path, monkeypatch):
    """Same params, data, seed and code in two folders (as two fresh clones): the same bytes, so the
    same dataset version (no wall-clock time or temporary name inside a checkpoint)."""
    hashes = []
    for name in ("clone_a", "clone_b"):
        (tmp_path / name).mkdir()
        monkeypatch.chdir(tmp_path / name)
        project = TinyProject(Path("."), gan_shards(Path(".")))
        params = project.params("gan.steps=2", "synthesize.count=6")
        train_gan(params, progress=False)
        synthesize(params, progress=False)
        hashes.append({folder: file_hashes(Path(folder)) for folder in ("real", "gan", "synthetic")})
    timed = ("last.pt", "training.json")  # they record the training time (the stage's metrics)
    for run in hashes:
        run["gan"] = {name: digest for name, digest in run["gan"].items() if name not in timed}
        assert "best.pt" in run["gan"]
    for folder in hashes[0]:
        assert hashes[0][folder] == hashes[1][folder], folder
    assert any(key.endswith(".tar") for key in hashes[0]["synthetic"])


def test_a_foreign_provenance_file_is_named_not_read_as_version_none(root):
    folder = root / "synthetic" / "foreign"
    folder.mkdir(parents=True)
    (folder / "provenance.json").write_text('{"note": "mine"}')
    with pytest.raises(OutputExistsError, match=r"provenance.json that `mgm synthesize` did not") as info:
        synthesize(gan_params(root, "synthesize.count=2", "synthesize.name=foreign"), progress=False)
    assert "None" not in str(info.value)
    assert (folder / "provenance.json").read_text() == '{"note": "mine"}'
