"""What train_gan measures: KID's zero, the scene probe, the cached real reference and its rungs,
standing statistics, conditioning that training teaches, and the errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.checkpoint import CheckpointError
from pipeline.config import load_params
from pipeline.data.sharding import shard_dataset
from pipeline.generators import load_generator, sagan_config, set_standing_statistics
from pipeline.metrics.fid import (
    MetricsError,
    image_features,
    inception_extractor,
    kernel_distance,
    read_shard_images,
    tiny_extractor,
)
from pipeline.metrics.reference import blurred_half, load_real_reference
from pipeline.metrics.scene_probe import CentroidProbe
from pipeline.models.sagan import Generator, SaganConfig
from pipeline.train.gan.batches import RealBatches
from pipeline.train.gan.loop import build_models, train_gan, train_step
from tests._tiny import as_overrides, gan_params, make_shards


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    """60 train / 4 val / 4 test / 60 reference rooms at 32 px."""
    root = tmp_path_factory.mktemp("gan-metrics")
    make_shards(root / "real", train=60, val=4, test=4, reference=60, per_shard=256)
    return root


def test_kid_is_near_zero_for_two_samples_of_one_distribution_and_not_for_another():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 64)), rng.normal(size=(400, 64))
    shifted = rng.normal(loc=0.5, size=(400, 64))
    same = kernel_distance(a, b)
    assert abs(same) < 0.02
    assert kernel_distance(a, shifted) > 20 * max(abs(same), 1e-3)


@pytest.mark.slow
def test_the_scene_probe_scores_real_rooms_well_above_chance(tmp_path):
    """At 64 px (the default) with Inception: 0.49 measured with 48 fitting images (chance 0.17)."""
    values = {"data.resolution": 64, "shard.workers": 0, "shard.out": str(tmp_path / "real")}
    sizes = {"data.rooms.train": 48, "data.rooms.val": 1, "data.rooms.test": 1, "data.rooms.reference": 48}
    shard_dataset(load_params(None, as_overrides({**values, **sizes})), progress=False)
    extractor = inception_extractor()  # ~10 s of features on 2 cores
    train, train_scenes = read_shard_images(tmp_path / "real", "train")
    held_out, held_out_scenes = read_shard_images(tmp_path / "real", "reference")
    probe = CentroidProbe.fit(image_features(train, extractor), train_scenes, 6)
    accuracy = probe.accuracy(image_features(held_out, extractor), held_out_scenes)
    assert accuracy > 2 * (1 / 6), accuracy  # chance is 1/6
    centres = probe.mean + probe.centroids[probe.present]
    assert probe.accuracy(centres, np.flatnonzero(probe.present)) == 1.0


def test_the_probe_needs_two_scene_types():
    with pytest.raises(MetricsError, match="fewer than 2 scene types"):
        CentroidProbe.fit(np.ones((4, 3)), np.zeros(4, dtype=np.int64), 6)


def test_real_reference_is_cached_by_content_and_gives_ordered_rungs(rooms, tmp_path):
    extractor = tiny_extractor()
    first = load_real_reference(rooms / "real", "reference", "train", 40, extractor, tmp_path)
    assert first.reference.shape == first.floor.shape == first.blur_half.shape == (40, 32)
    (entry,) = (tmp_path / "features").glob("*.npz")
    images, _ = read_shard_images(rooms / "real", "train", limit=40)
    blurred = blurred_half(images)
    assert blurred.shape == images.shape and not np.array_equal(blurred, images)
    # the second load reads the cache: same arrays, no image decoded (a moved shard set still hits it
    # when its summary and manifest are the same, since the key is their content)
    moved = tmp_path / "moved"
    (rooms / "real").rename(moved)
    try:
        again = load_real_reference(moved, "reference", "train", 40, extractor, tmp_path)
    finally:
        moved.rename(rooms / "real")
    assert np.array_equal(again.reference, first.reference) and np.array_equal(again.floor, first.floor)
    assert len(list((tmp_path / "features").glob("*.npz"))) == 1 and entry.exists()
    rungs = first.rungs(first.probe(6))
    assert rungs["n_images"] == 40 and rungs["blur_half_fd_tiny"] > rungs["floor_fd_tiny"]
    assert 0.0 <= rungs["real_scene_acc"] <= 1.0


def test_a_reference_split_smaller_than_eval_images_is_refused_before_training(rooms, tmp_path):
    params = gan_params(rooms, f"gan.out={tmp_path / 'gan'}", "gan.eval_images=61")
    with pytest.raises(MetricsError, match=r"gan.reference_split: split 'reference' of .* holds 60 images"):
        train_gan(params, progress=False)
    assert not (tmp_path / "gan").exists()
    params = gan_params(rooms, f"gan.out={tmp_path / 'gan'}", "gan.floor_split=val", "gan.eval_images=8")
    with pytest.raises(
        MetricsError, match=r"gan.floor_split: split 'val' of .* holds 4 images, fewer than 8"
    ):
        train_gan(params, progress=False)
    assert not (tmp_path / "gan").exists()


def test_standing_statistics_make_eval_mode_sample_as_train_mode_does():
    torch.manual_seed(0)
    generator = Generator(
        SaganConfig(resolution=32, num_classes=3, latent_dim=8, g_width=4, conditioning="shared")
    )
    z, labels = torch.randn(64, 8), torch.randint(0, 3, (64,))
    generator.train()
    with torch.no_grad():
        for _ in range(3):  # running statistics of other batches
            generator(torch.randn(64, 8) * 3, labels)
        train_mode = generator(z, labels)
    state = torch.get_rng_state()
    set_standing_statistics(generator, z, labels, 64, torch.device("cpu"))
    assert torch.equal(state, torch.get_rng_state()) and not generator.training
    with torch.no_grad():
        eval_mode = generator(z, labels)
    assert torch.allclose(eval_mode, train_mode, atol=0.02)  # unbiased vs biased variance only


@pytest.mark.parametrize("conditioning", ["shared", "class_bn"])
def test_training_teaches_g_the_label(rooms, conditioning):
    """Changing only the label changes G's output more after a few steps than at initialisation."""
    params = gan_params(rooms, f"gan.conditioning={conditioning}", "gan.batch_size=8", "gan.class_lr_scale=4")
    config = sagan_config(params, 6, 32)
    torch.manual_seed(0)
    models = build_models(config, params.gan, torch.device("cpu"))
    z = torch.randn(12, config.latent_dim, generator=torch.Generator().manual_seed(5))

    def label_effect() -> float:
        generator = models.generator.eval()
        with torch.no_grad():
            return float(
                (generator(z, torch.zeros(12, dtype=torch.long)) - generator(z, torch.full((12,), 3)))
                .abs()
                .mean()
            )

    before = label_effect()
    batches = RealBatches(rooms / "real", ["train"], 8, 0, 0)
    for step in range(12):
        train_step(models, batches, params.gan, step, torch.device("cpu"))
    after = label_effect()
    assert after > before + 1e-3, (before, after)
    if conditioning == "shared":
        assert before == 0.0  # the shared maps start at zero: G starts unconditional


def test_a_checkpoint_with_another_conditioning_scheme_is_named(rooms, tmp_path):
    train_gan(gan_params(rooms, f"gan.out={tmp_path}", "gan.steps=1", "gan.eval_images=8"), progress=False)
    other = sagan_config(gan_params(rooms, "gan.conditioning=class_bn", "gan.g_spectral_norm=true"), 6, 32)
    with pytest.raises(CheckpointError, match=r"conditioning: checkpoint 'shared' vs params 'class_bn'"):
        load_generator(tmp_path / "best.pt", other)
