"""The degradations behind bench/fid_calibration.py: shapes, determinism and what each removes."""

from __future__ import annotations

import numpy as np

from bench.fid_calibration import degradations, grey, noisy, resampled


def checkerboard_images(count: int = 3, side: int = 64) -> np.ndarray:
    """uint8 images whose content is all fine detail: a 1-pixel checkerboard in every channel."""
    board = ((np.indices((side, side)).sum(axis=0) % 2) * 255).astype(np.uint8)
    return np.repeat(np.repeat(board[None, :, :, None], 3, axis=-1), count, axis=0)


def test_resampling_keeps_shape_and_removes_fine_detail() -> None:
    images = checkerboard_images()
    blurred = resampled(images, 16)
    assert blurred.shape == images.shape and blurred.dtype == np.uint8
    # a 1-pixel checkerboard averages to mid grey once it goes through 16 px
    assert images.std() > 120
    assert blurred.std() < 10
    assert abs(float(blurred.mean()) - 127.5) < 10


def test_noise_is_seeded_clipped_and_of_the_asked_size() -> None:
    images = np.full((4, 32, 32, 3), 128, dtype=np.uint8)
    first, second = noisy(images, 10.0, seed=3), noisy(images, 10.0, seed=3)
    np.testing.assert_array_equal(first, second)
    assert not np.array_equal(first, noisy(images, 10.0, seed=4))
    assert abs(float(first.astype(np.float64).std()) - 10.0) < 0.5
    assert noisy(np.full((1, 8, 8, 3), 250, dtype=np.uint8), 50.0).max() == 255


def test_grey_has_three_equal_channels_with_the_luma() -> None:
    red = np.zeros((1, 4, 4, 3), dtype=np.uint8)
    red[..., 0] = 200
    result = grey(red)
    assert result.shape == red.shape
    assert np.all(result == round(0.299 * 200))


def test_degradation_table_starts_with_the_untouched_floor() -> None:
    table = degradations(64)
    images = checkerboard_images(2)
    names = list(table)
    assert names[0] == "real (the floor)"
    np.testing.assert_array_equal(table[names[0]](images), images)
    assert [name for name in names if name.startswith("blurred")] == [
        "blurred: down to 32 px and back",
        "blurred: down to 16 px and back",
        "blurred: down to 8 px and back",
    ]
    for name in names:
        assert table[name](images).shape == images.shape
