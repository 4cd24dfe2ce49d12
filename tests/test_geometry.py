"""Geometry helpers: square crops, per-modality resizing, normals from depth on analytic surfaces."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.data.geometry import (
    backproject,
    center_crop_square,
    normals_from_depth,
    resize_depth_masked,
    resize_labels,
    resize_normals_masked,
    resize_rgb,
    square_crop_resize,
)

INTRINSICS = (60.0, 62.0, 31.5, 23.5)  # fx, fy, cx, cy of a 64 x 48 test camera
HEIGHT, WIDTH = 48, 64
METHODS = ("fit", "diff")


def _rays() -> np.ndarray:
    """Unnormalised pixel rays (x', y', 1) of the test camera."""
    return backproject(np.ones((HEIGHT, WIDTH)), *INTRINSICS)


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def _plane_depth(normal: np.ndarray, offset: float) -> np.ndarray:
    """z-depth of the plane ``normal . p = -offset`` (``normal`` towards the camera, offset > 0)."""
    return -offset / (_rays() @ normal)


# --- crops and resizing ---------------------------------------------------------------------


def test_center_crop_square_takes_the_middle_of_the_long_side():
    wide = np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH)
    assert np.array_equal(center_crop_square(wide), wide[:, 8:56])
    tall = np.zeros((WIDTH, HEIGHT, 3))
    assert center_crop_square(tall).shape == (HEIGHT, HEIGHT, 3)
    assert center_crop_square(np.zeros((5, 5))).shape == (5, 5)


def test_resize_rgb_is_antialiased_and_keeps_constants():
    yy, xx = np.mgrid[0:64, 0:64]
    checker = (((xx + yy) % 2) * 255).astype(np.uint8)
    small = resize_rgb(np.stack([checker] * 3, axis=-1), 16)
    assert small.shape == (16, 16, 3) and small.dtype == np.uint8
    assert np.abs(small[2:-2, 2:-2].astype(int) - 128).max() <= 3  # averaged, not aliased to 0/255
    flat = np.full((30, 30, 3), 77, np.uint8)
    assert np.all(resize_rgb(flat, 64) == 77)


def test_resize_labels_keeps_only_original_values():
    rng = np.random.default_rng(0)
    labels = rng.choice(np.array([0, 3, 7, 255], np.uint8), size=(96, 96))
    for size in (32, 40, 128):
        out = resize_labels(labels, size)
        assert out.shape == (size, size) and out.dtype == np.uint8
        assert set(np.unique(out)) <= {0, 3, 7, 255}


def test_masked_depth_resize_does_not_bleed_invalid_pixels():
    depth = np.full((64, 64), 2.0, np.float32)
    depth[:, 32:] = 0.0  # invalid right half
    depth[10, 5] = np.nan  # a NaN counts as invalid too
    out = resize_depth_masked(depth, 16)
    valid = out > 0
    assert out.dtype == np.float32
    assert np.allclose(out[valid], 2.0)  # no value pulled towards 0 at the border
    assert valid[:, :8].all() and not valid[:, 8:].any()


def test_masked_depth_resize_averages_valid_pixels_only():
    depth = np.zeros((4, 4), np.float32)
    depth[:, :2] = 1.0
    depth[:, 2:] = 3.0
    depth[0, 0] = 0.0  # one hole in the left block
    out = resize_depth_masked(depth, 2)
    assert out[0, 0] == pytest.approx(1.0)
    assert out[0, 1] == pytest.approx(3.0)
    sparse = np.zeros((4, 4), np.float32)
    sparse[0, 0] = 5.0  # 1 valid pixel of 4: weight 0.25 < 0.5
    assert resize_depth_masked(sparse, 2)[0, 0] == 0.0


def test_masked_normal_resize_renormalises_and_ignores_invalid():
    normals = np.zeros((64, 64, 3), np.float32)
    normals[:, :32] = (0.0, 0.0, -1.0)
    normals[:32, :32] = (0.6, 0.0, -0.8)
    out = resize_normals_masked(normals, 16)
    length = np.linalg.norm(out, axis=-1)
    assert np.allclose(length[length > 0], 1.0, atol=1e-5)
    assert (length[:, :8] > 0).all() and (length[:, 8:] == 0).all()
    assert np.allclose(out[12, 3], (0.0, 0.0, -1.0), atol=1e-6)


def test_square_crop_resize_shapes():
    rgb = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    seg = np.zeros((HEIGHT, WIDTH), np.uint8)
    depth = np.ones((HEIGHT, WIDTH), np.float32)
    normal = np.zeros((HEIGHT, WIDTH, 3), np.float32)
    outs = square_crop_resize(32, rgb, seg, depth, normal)
    assert [o.shape for o in outs] == [(32, 32, 3), (32, 32), (32, 32), (32, 32, 3)]
    assert [o.dtype for o in outs] == [np.uint8, np.uint8, np.float32, np.float32]


# --- normals from depth -------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_fronto_parallel_plane_faces_the_camera(method):
    normals = normals_from_depth(np.full((HEIGHT, WIDTH), 2.5), *INTRINSICS, method=method)
    assert normals.dtype == np.float32 and normals.shape == (HEIGHT, WIDTH, 3)
    assert np.allclose(normals, (0.0, 0.0, -1.0), atol=1e-5)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("true_normal", [(0.3, -0.4, -0.866), (-0.5, 0.2, -0.84), (0.0, -0.6, -0.8)])
def test_tilted_plane_gives_the_analytic_normal(method, true_normal):
    normal = np.array(true_normal) / np.linalg.norm(true_normal)
    depth = _plane_depth(normal, offset=2.0)
    assert (depth > 0).all()
    estimate = normals_from_depth(depth, *INTRINSICS, method=method, max_rel_jump=None)
    assert _angle_deg(estimate, normal).max() < 0.05


def test_floor_below_the_camera_points_up():
    """A floor 1.2 m below the camera (y down): normal (0, -1, 0) in the OpenCV frame."""
    rays = _rays()
    below = rays[..., 1] > 0.05
    depth = np.where(below, 1.2 / np.where(below, rays[..., 1], 1.0), 0.0)
    normals = normals_from_depth(depth, *INTRINSICS)
    valid = np.linalg.norm(normals, axis=-1) > 0
    assert valid[below].mean() > 0.8  # the far rows near the horizon jump too much to be used
    assert np.allclose(normals[valid], (0.0, -1.0, 0.0), atol=1e-4)


@pytest.mark.parametrize(("method", "p95_deg"), [("fit", 4.0), ("diff", 0.5)])
def test_sphere_normals_point_out_of_the_sphere(method, p95_deg):
    """A unit sphere 3 m ahead, ~70 px in radius: normals match (p - c) / R away from the rim.

    The plane fit averages over its window, so curvature costs it a few degrees near the rim.
    """
    height, width, focal = 120, 160, 150.0
    intrinsics = (focal, focal, (width - 1) / 2, (height - 1) / 2)
    rays = backproject(np.ones((height, width)), *intrinsics)
    centre, radius = np.array([0.0, 0.0, 3.0]), 1.0
    a = np.sum(rays * rays, axis=-1)  # nearest root of |t r - c|^2 = R^2
    b = -2.0 * rays @ centre
    disc = b * b - 4 * a * (centre @ centre - radius**2)
    hit = disc > 0
    depth = np.where(hit, (-b - np.sqrt(np.where(hit, disc, 0))) / (2 * a), 0.0)  # rays have z = 1
    points = rays * depth[..., None]
    truth = (points - centre) / radius
    estimate = normals_from_depth(depth, *intrinsics, method=method)
    inner = hit & (truth[..., 2] < -0.5)  # away from the grazing rim
    errors = _angle_deg(estimate[inner], truth[inner])
    assert np.linalg.norm(estimate[inner], axis=-1).min() > 0.99
    assert np.median(errors) < 1.0 and np.percentile(errors, 95) < p95_deg
    assert (estimate[~hit] == 0).all()
    assert (np.sum(estimate[inner] * points[inner], axis=-1) < 0).all()


@pytest.mark.parametrize("method", METHODS)
def test_invalid_depth_gives_zero_normals(method):
    depth = np.full((HEIGHT, WIDTH), 2.0)
    depth[:, :20] = 0.0
    depth[30, 40] = np.nan
    depth[5, 5] = 2.0  # an isolated valid pixel: no neighbours
    normals = normals_from_depth(depth, *INTRINSICS, method=method)
    length = np.linalg.norm(normals, axis=-1)
    assert (length[:, :20] == 0).all() and length[30, 40] == 0
    elsewhere = np.ones_like(length, dtype=bool)
    elsewhere[:, :20] = False
    elsewhere[30, 40] = False
    assert np.allclose(length[elsewhere], 1.0, atol=1e-5)
    assert np.isfinite(normals).all()


@pytest.mark.parametrize("method", METHODS)
def test_depth_step_does_not_bend_normals(method):
    """Two fronto-parallel planes 2 m and 4 m away: normals stay (0, 0, -1) at the occlusion edge."""
    depth = np.full((HEIGHT, WIDTH), 2.0)
    depth[:, WIDTH // 2 :] = 4.0
    normals = normals_from_depth(depth, *INTRINSICS, method=method)
    assert np.allclose(normals, (0.0, 0.0, -1.0), atol=1e-5)


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="method"):
        normals_from_depth(np.ones((4, 4)), *INTRINSICS, method="magic")
