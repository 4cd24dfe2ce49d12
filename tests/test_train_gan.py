"""GAN training: a few steps change G and teach D, EMA, outputs, exact resume, param checks."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pipeline.checkpoint import CheckpointError, load_checkpoint
from pipeline.generators import allocate_labels, load_generator, sagan_config
from pipeline.train.engine import TrainingError
from pipeline.train.gan.adversarial import ema_decay_at, hinge_d_loss
from pipeline.train.gan.batches import RealBatches
from pipeline.train.gan.loop import build_models, train_gan, train_step
from tests._tiny import gan_params, gan_shards


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("gan")
    gan_shards(root)
    return root


def _d_loss(models, real, labels, z):
    models.generator_ema.eval()
    with torch.no_grad():
        models.generator.eval()
        fake = models.generator(z, labels)
        models.discriminator.eval()
        return hinge_d_loss(models.discriminator(real, labels), models.discriminator(fake, labels)).item()


def test_a_few_steps_change_g_lower_d_loss_and_move_the_ema(real_root):
    params = gan_params(real_root, "gan.diffaugment=[]", "gan.instance_noise=0", "gan.d_steps=2")
    torch.manual_seed(0)
    models = build_models(sagan_config(params, 6, 32), params.gan, torch.device("cpu"))
    batches = RealBatches(real_root / "real", ["train"], 4, 0, 0)
    real, labels = next(RealBatches(real_root / "real", ["train"], 4, 0, 0))
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(1))
    g_before = {k: v.clone() for k, v in models.generator.state_dict().items()}
    ema_before = {k: v.clone() for k, v in models.generator_ema.state_dict().items()}
    loss_before = _d_loss(models, real, labels, z)
    for step in range(8):
        stats = train_step(models, batches, params.gan, step, torch.device("cpu"))
    assert set(stats) == {"d_loss", "d_real", "d_fake", "g_loss"}
    loss_after = _d_loss(models, real, labels, z)
    assert loss_after < loss_before - 0.05
    g_after = models.generator.state_dict()
    assert any(not torch.equal(g_before[k], g_after[k]) for k in g_before)
    ema = models.generator_ema.state_dict()
    params_names = [n for n, _ in models.generator.named_parameters()]
    assert any(not torch.equal(ema[n], ema_before[n]) for n in params_names)
    assert any(not torch.equal(ema[n], g_after[n]) for n in params_names)  # EMA lags the raw weights


def test_ema_decay_warms_up_and_labels_follow_weights():
    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(90, 0.999) == pytest.approx(0.91)
    assert ema_decay_at(10**6, 0.999) == 0.999
    labels = allocate_labels([3, 1, 0, 2], 12, seed=0)
    assert np.bincount(labels, minlength=4).tolist() == [6, 2, 0, 4]
    assert np.array_equal(labels, allocate_labels([3, 1, 0, 2], 12, seed=0))
    assert not np.array_equal(labels, allocate_labels([3, 1, 0, 2], 12, seed=1))


def _run(root, name, steps, *extra):
    params = gan_params(
        root,
        f"gan.out={root / name}",
        f"gan.plots={root / name / 'plots'}",
        f"gan.steps={steps}",
        "gan.checkpoint_every=2",
        "gan.eval_every=2",
        "gan.sample_every=2",
        *extra,
    )
    return train_gan(params, progress=False)


def _rows(path):
    with open(path) as stream:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(stream)]


def test_train_gan_outputs(real_root):
    straight = _run(real_root, "straight", 4)
    assert straight["steps"] == 4 and straight["extractor"] == "tiny"
    assert straight["kimg"] == 4 * 4 / 1000 and straight["n_images"] == 4
    flat = {"fd_tiny", "kd_tiny", "scene_acc", "floor_fd_tiny", "floor_kd_tiny", "blur_half_fd_tiny"}
    assert flat | {"blur_half_kd_tiny", "real_scene_acc", "best_step", "best_kd_tiny"} <= set(straight)
    assert all(isinstance(value, (int, float)) for key, value in straight.items() if key != "extractor")
    assert 0.0 <= straight["scene_acc"] <= 1.0 and straight["blur_half_fd_tiny"] != straight["floor_fd_tiny"]
    out = real_root / "straight"
    assert {p.name for p in out.glob("*.pt")} == {"best.pt", "last.pt"}
    assert "opt_g" in load_checkpoint(out / "last.pt") and "opt_g" not in load_checkpoint(out / "best.pt")
    grids = sorted(p.name for p in (out / "samples").glob("*.png"))
    assert grids == ["step-000002.png", "step-000004.png"]
    with Image.open(out / "samples" / grids[-1]) as grid:
        assert grid.size[1] == 6 * (64 + 2)  # one row per scene type
    header = (out / "plots" / "history.csv").read_text().splitlines()[0].split(",")
    assert {"step", "kimg", "fd_tiny", "kd_tiny", "scene_acc", "d_loss", "g_loss"} <= set(header)
    assert not any(name.startswith("fid") for name in header)
    assert (out / "plots" / "metrics.png").stat().st_size > 1000
    # exact resume after a kill: tests/test_training_resume.py (every training stage)


def test_other_params_start_afresh_with_a_notice(real_root, capsys):
    _run(real_root, "changed", 2)
    again = _run(real_root, "changed", 2, "gan.g_width=8", "gan.d_lr=0.001")
    err = capsys.readouterr().err
    assert "training afresh" in err and "gan.g_width: checkpoint 4 vs params 8" in err
    assert "gan.d_lr: checkpoint 0.0002 vs params 0.001" in err
    assert again["steps"] == 2
    assert load_checkpoint(real_root / "changed" / "last.pt")["config"]["sagan"]["g_width"] == 8


def test_generator_checkpoint_must_match_the_architecture(real_root):
    _run(real_root, "arch", 1)
    config = sagan_config(gan_params(real_root), 6, 32)
    generator, state = load_generator(real_root / "arch" / "best.pt", config)
    assert state["step"] == 1 and not generator.training
    wider = sagan_config(gan_params(real_root, "gan.d_width=8", "gan.attention_resolution=0"), 6, 32)
    with pytest.raises(CheckpointError, match=r"attention_resolution: checkpoint 16 vs params 0; d_width"):
        load_generator(real_root / "arch" / "best.pt", wider)
    with pytest.raises(CheckpointError, match="num_classes: checkpoint 6 vs params 5"):
        load_generator(real_root / "arch" / "best.pt", sagan_config(gan_params(real_root), 5, 32))
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(real_root / "arch" / "absent.pt", config)


def test_gan_resolution_is_the_shard_sets_not_data_resolution(real_root):
    metrics = _run(real_root, "res", 1, "data.resolution=64")  # the shards are 32 px
    assert metrics["steps"] == 1
    assert load_checkpoint(real_root / "res" / "best.pt")["config"]["sagan"]["resolution"] == 32


def test_a_gan_run_that_would_take_no_step_is_refused(real_root):
    with pytest.raises(
        TrainingError, match=r"train split of .* holds 12 samples, fewer than gan\.batch_size \(16\)"
    ):
        _run(real_root, "nostep", 2, "gan.batch_size=16")
    assert not (real_root / "nostep" / "last.pt").exists()


def test_dvc_plot_of_train_gan_names_columns_the_stage_writes():
    """The history plot in dvc.yaml draws columns that exist (with Inception, the default extractor)."""
    import yaml

    from pipeline.metrics.fid import metric_names

    stage = yaml.safe_load(Path("dvc.yaml").read_text())["stages"]["train_gan"]
    (plot,) = [next(iter(entry.values())) for entry in stage["plots"] if "history.csv" in next(iter(entry))]
    written = {"step", "kimg", "epoch", "d_loss", "d_real", "d_fake", "g_loss", "scene_acc", "seconds"}
    written |= set(metric_names("inception"))
    assert plot["x"] in written and plot["y"] in written
