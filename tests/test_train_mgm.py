"""train_mgm: stage outputs, checkpoints in the formats evaluate/synthesize/mix read, exact resume,
bad GAN checkpoints, and synthesis from the exported (guided) MGM generator."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from PIL import Image

from pipeline.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pipeline.data.manifest import read_manifest
from pipeline.data.reader import ShardDataset, read_summary
from pipeline.errors import ParamsError
from pipeline.evaluation import load_trained
from pipeline.generators import load_generator, sagan_config
from pipeline.models.refinement import load_refinement
from pipeline.synthesis import synthesize
from pipeline.train.builders import build_model
from pipeline.train.engine import TrainingError
from pipeline.train.gan.loop import build_models, generator_checkpoint
from pipeline.train.mgm import train_mgm
from stages.cli import main as mgm_main
from tests._files import file_hashes
from tests._tiny import gan_params, mgm_overrides, mgm_params, mgm_project

WEIGHTS = ("model", "ssl_head", "generator", "generator_ema", "discriminator")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the stage runs set runtime.threads=1 themselves
    yield mgm_project(tmp_path_factory.mktemp("train_mgm")).root
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def straight(root):
    """A full two-epoch run through the stage command (``mgm train_mgm``)."""
    (root / "empty.yaml").write_text("{}\n")
    sets = [x for value in mgm_overrides(root, "straight") for x in ("--set", value)]
    metrics = root / "straight_metrics.json"
    args = ["train_mgm", "--params", str(root / "empty.yaml"), "--metrics", str(metrics), "--quiet"]
    assert mgm_main(args + sets) == 0
    return root / "straight", json.loads(metrics.read_text())


def _rows(path):
    with open(path) as stream:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(stream)]


def test_stage_outputs_and_checkpoint_formats(root, straight):
    out, metrics = straight
    assert {p.name for p in out.iterdir()} == {
        "last.pt", "best.pt", "generator.pt", "training.json", "samples", "plots",
    }  # fmt: skip
    assert metrics["epochs_done"] == 2 and metrics["iterations"] == 6  # 12 labelled images, batch 4
    assert metrics["steps_run"] == [
        "dense",
        "scene_real",
        "ssl_real",
        "gan",
        "weak_images",
        "scene_weak",
        "ssl_weak",
    ]
    assert json.loads((out / "training.json").read_text())["best_epoch"] == metrics["best_epoch"]
    grids = sorted(p.name for p in (out / "samples").glob("*.png"))
    assert grids == ["step-000002.png", "step-000004.png", "step-000006.png"]
    with Image.open(out / "samples" / grids[-1]) as grid:
        assert grid.size[1] == 6 * (64 + 2)  # one row per scene type
    rows = _rows(out / "plots" / "history.csv")
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert {"train_dense", "train_scene_real", "train_g_loss", "train_scene_weak", "train_ssl_weak"} <= set(
        rows[0]
    )
    assert {"val_seg_miou", "val_depth_mae", "val_normal_mean_angle", "val_score"} <= set(rows[0])

    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] == metrics["best_epoch"] and best["val_score"] == pytest.approx(
        metrics["best_val_score"]
    )
    # M loads as evaluate loads a train_mt best.pt
    params = mgm_params(root, "straight")
    tasks = list(params.model.tasks)
    net = load_trained(out / "best.pt", tasks, lambda t, c: build_model(params, t, c), 13)
    assert all(torch.equal(v, best["model"][k]) for k, v in net.state_dict().items())
    # R loads as mix.refinement reads it
    refinement = load_refinement(best["refinement"], "cpu", where=str(out / "best.pt"))
    assert refinement.num_scenes == 6 and refinement.tasks == tasks
    # generator.pt: a train_gan checkpoint (EMA generator of the best epoch) plus the guide
    exported = load_checkpoint(out / "generator.pt")
    generator, state = load_generator(out / "generator.pt", sagan_config(params, 6, 32))
    assert all(torch.equal(v, best["generator_ema"][k]) for k, v in generator.state_dict().items())
    assert state["guide"]["config"]["mode"] == "add" and set(state["refinement"]) == {"config", "state"}
    assert exported["step"] == 1 + 3 * metrics["best_epoch"]  # GAN pre-training step + joint G steps
    gan = load_checkpoint(root / "gan" / "best.pt")
    assert not torch.equal(exported["generator"]["linear.bias"], gan["generator"]["linear.bias"])


def test_finished_run_stays_and_changed_params_restart(root, straight, capsys):
    """(Exact resume after a kill: tests/test_training_resume.py, for every training stage.)"""
    out, metrics = straight
    first = train_mgm(mgm_params(root, "resumed"), progress=False, max_epochs=1)
    assert first["epochs_done"] == 1 and not (root / "resumed" / "training.json").exists()
    assert not (root / "resumed" / "generator.pt").exists()  # nothing that looks finished
    second = train_mgm(mgm_params(root, "resumed"), progress=False)
    assert "resuming" in capsys.readouterr().err
    assert second["epochs_done"] == 2 and second["iterations"] == metrics["iterations"]
    assert file_hashes(out / "samples") == file_hashes(root / "resumed" / "samples")

    again = train_mgm(mgm_params(root, "resumed"), progress=False)  # finished: nothing more to train
    assert again["iterations"] == second["iterations"]
    changed = train_mgm(mgm_params(root, "resumed", "mgm.lr=0.001"), progress=False, max_epochs=1)
    assert "training afresh" in capsys.readouterr().err and changed["epochs_done"] == 1
    assert not (root / "resumed" / "generator.pt").exists()


def test_mismatched_or_missing_gan_checkpoint_is_a_clear_error(root, capsys):
    params = gan_params(root)
    scene_names = read_summary(root / "real")["scene_names"][:5]
    config = sagan_config(params, 5, 32)
    models = build_models(config, params.gan, torch.device("cpu"))
    five = root / "gan5" / "best.pt"
    save_checkpoint(generator_checkpoint(models, config, params.gan, scene_names, 0), five)
    overrides = [f"mgm.gan_checkpoint={five}"]
    with pytest.raises(CheckpointError, match=rf"mgm.gan_checkpoint: {five} was trained on 5 scene classes"):
        train_mgm(mgm_params(root, "bad", *overrides), progress=False)
    assert not (root / "bad" / "last.pt").exists()
    sets = [x for value in mgm_overrides(root, "bad", *overrides) for x in ("--set", value)]
    code = mgm_main(["train_mgm", "--params", str(root / "empty.yaml"), "--quiet", *sets])
    err = capsys.readouterr().err
    assert code == 2 and "mgm.gan_checkpoint" in err and str(five) in err and "have 6" in err
    with pytest.raises(CheckpointError, match=r"mgm.gan_checkpoint: .*absent.pt does not exist"):
        train_mgm(mgm_params(root, "bad", f"mgm.gan_checkpoint={root / 'absent.pt'}"), progress=False)
    with pytest.raises(ParamsError, match=r"mgm.weak: Input should be 'synthetic', 'real' or 'none'"):
        mgm_params(root, "bad", "mgm.weak=fake")


def test_synthesize_from_the_mgm_generator_is_guided_and_byte_identical(root, straight):
    out, _ = straight
    params = mgm_params(
        root,
        "straight",
        f"synthesize.checkpoint={out / 'generator.pt'}",
        "synthesize.name=mgm",
        "synthesize.count=10",
        "synthesize.batch_size=4",
        "synthesize.fid_split=none",
    )
    first = synthesize(params, progress=False)
    target = root / "synthetic" / "mgm"
    hashes = file_hashes(target)
    second = synthesize(params, progress=False)
    assert file_hashes(target) == hashes and first == second
    guide = first["guide"]
    assert guide["mode"] == "add" and guide["seed"] == 0 and 1 <= guide["distinct_images"] <= 10
    real = read_manifest(root / "real").to_pydict()
    train_scene = {k: s for k, s, split in zip(real["key"], real["scene"], real["split"]) if split == "train"}
    items = list(ShardDataset(target, "synthetic"))
    assert len(items) == 10
    for item in items:  # each image was guided by a real training image of its own scene
        assert train_scene[item["meta"]["guide_key"]] == int(item["scene"])
    # the guide matters: without it (plain EMA G on z) the images differ
    plain = {k: v for k, v in load_checkpoint(out / "generator.pt").items() if k != "guide"}
    save_checkpoint(plain, root / "plain.pt")
    unguided = mgm_params(
        root, "straight", f"synthesize.checkpoint={root / 'plain.pt'}", "synthesize.name=plain",
        "synthesize.count=10", "synthesize.batch_size=4", "synthesize.fid_split=none",
    )  # fmt: skip
    assert "guide" not in synthesize(unguided, progress=False)
    pixels = [item["rgb"] for item in items]
    plain_pixels = [item["rgb"] for item in ShardDataset(root / "synthetic" / "plain", "synthetic")]
    assert not all(torch.equal(a, b) for a, b in zip(pixels, plain_pixels))


def test_concat_guide_and_weak_real_variants_train_and_export(root):
    concat = train_mgm(mgm_params(root, "concat", "mgm.guide=concat", "mgm.epochs=1"), progress=False)
    assert concat["epochs_done"] == 1
    sets = mgm_overrides(
        root, "concat", f"synthesize.checkpoint={root / 'concat' / 'generator.pt'}", "synthesize.name=concat",
        "synthesize.count=4", "synthesize.fid_split=none",
    )  # fmt: skip
    (root / "empty.yaml").write_text("{}\n")
    metrics = root / "synth_concat.json"
    args = ["synthesize", "--params", str(root / "empty.yaml"), "--metrics", str(metrics), "--quiet"]
    assert mgm_main(args + [x for value in sets for x in ("--set", value)]) == 0
    guide = json.loads(metrics.read_text())["guide"]
    assert guide["mode"] == "concat" and 1 <= guide["distinct_images"] <= 4
    provenance = json.loads((root / "synthetic" / "concat" / "provenance.json").read_text())
    assert provenance["guide"]["mode"] == "concat" and provenance["count"] == 4
    weak_real = train_mgm(mgm_params(root, "weak_real", "mgm.weak=real", "mgm.epochs=1"), progress=False)
    assert "gan" not in weak_real["steps_run"] and "scene_weak" in weak_real["steps_run"]
    assert not (root / "weak_real" / "generator.pt").exists()
    assert "refinement" in load_checkpoint(root / "weak_real" / "best.pt")


def test_a_joint_run_that_would_take_no_step_is_refused(root):
    with pytest.raises(TrainingError, match=r"holds 12 samples, fewer than mgm\.batch_size \(16\)"):
        train_mgm(mgm_params(root, "nostep", "mgm.batch_size=16"), progress=False)
    assert not (root / "nostep" / "last.pt").exists()


def test_recalibrate_mode_validates_and_saves_statistics_of_the_clean_labelled_images(root):
    """bn_mode recalibrate: the best.pt M carries statistics recomputed from the labelled train
    images (in order, no augmentation), whatever passes the epoch made."""
    from pipeline.train.bn_statistics import batch_norms, recalibrate

    params = mgm_params(root, "recalibrated", "mgm.bn_mode=recalibrate", "mgm.epochs=1")
    train_mgm(params, progress=False)
    tasks = list(params.model.tasks)
    saved = load_trained(root / "recalibrated" / "best.pt", tasks, lambda t, c: build_model(params, t, c), 13)
    again = load_trained(root / "recalibrated" / "best.pt", tasks, lambda t, c: build_model(params, t, c), 13)
    for layer in batch_norms(again):
        layer.reset_running_stats()
    items = list(ShardDataset(root / "real", "train", dense=()))
    batches = [torch.stack([item["rgb"] for item in items[i : i + 4]]) for i in range(0, len(items) - 3, 4)]
    assert recalibrate(again, batches) == 12
    for key, value in saved.state_dict().items():
        assert torch.allclose(value.float(), again.state_dict()[key].float(), atol=1e-5), key
    authors = train_mgm(mgm_params(root, "authors_bn", "mgm.epochs=1"), progress=False)
    assert authors["epochs_done"] == 1
    other = load_trained(root / "authors_bn" / "best.pt", tasks, lambda t, c: build_model(params, t, c), 13)
    first = batch_norms(other)[0].running_mean
    assert not torch.allclose(first, batch_norms(saved)[0].running_mean, atol=1e-5)


def test_the_auxiliary_warm_up_reaches_the_loop(root):
    """mgm.aux_warmup_epochs changes what a (deterministic) joint run learns: two runs without it
    record the same epoch, a run with it another."""
    from pathlib import Path

    rows = {}
    for name, warmup in [("warm_none", 0), ("warm_none_again", 0), ("warm_two", 2)]:
        params = mgm_params(root, name, "mgm.weak=none", "mgm.ssl=none", f"mgm.aux_warmup_epochs={warmup}")
        train_mgm(params, progress=False, max_epochs=1)
        (row,) = list(csv.DictReader((Path(params.mgm.plots) / "history.csv").open()))
        rows[name] = {key: value for key, value in row.items() if key != "seconds"}
    assert rows["warm_none"] == rows["warm_none_again"]
    assert rows["warm_two"]["val_score"] != rows["warm_none"]["val_score"]
    assert float(rows["warm_two"]["train_scene_real"]) > 1.0  # the scene loss itself is not scaled
