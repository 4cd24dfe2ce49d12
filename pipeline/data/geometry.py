"""Geometry helpers shared by the importers: square crops, per-modality resizing, normals from depth.

Every importer computes what it needs at the source resolution (normals from depth use the source
intrinsics), then calls :func:`square_crop_resize` to get the square sample the schema asks for.

Resizing rules per modality:

* RGB: PIL bilinear, which is antialiased (its kernel widens with the scale factor when shrinking).
* labels: nearest neighbour, so the output holds only values present in the input.
* depth: masked average, ``resize(depth * valid) / resize(valid)``; output pixels whose valid weight
  is below ``min_weight`` (0.5) become invalid (0), so invalid regions never bleed into valid values.
* normals: masked average the same way, then renormalised to unit length; invalid = all zeros.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DEFAULT_MIN_WEIGHT = 0.5
"""Output pixels need at least this fraction of valid input weight to stay valid."""

DEFAULT_MAX_REL_JUMP = 0.05
"""Neighbours whose depth differs by more than this fraction of the centre depth are not differenced."""

_EPS = 1e-12


def center_crop_square(image: np.ndarray) -> np.ndarray:
    """Crop the central square (side = the shorter side) of an ``H x W`` or ``H x W x C`` array."""
    height, width = image.shape[:2]
    side = min(height, width)
    top = (height - side) // 2
    left = (width - side) // 2
    return image[top : top + side, left : left + side]


def resize_rgb(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 ``H x W x 3`` image to ``size x size`` with antialiased bilinear filtering."""
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), mode="RGB")
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def resize_labels(labels: np.ndarray, size: int) -> np.ndarray:
    """Resize a uint8 ``H x W`` label map to ``size x size`` with nearest neighbour (no new values)."""
    image = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8), mode="L")
    return np.asarray(image.resize((size, size), Image.Resampling.NEAREST), dtype=np.uint8)


def _resize_float(channel: np.ndarray, size: int) -> np.ndarray:
    """Bilinear (antialiased) resize of one float channel via PIL mode ``F``."""
    image = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32), mode="F")
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR), dtype=np.float64)


def resize_depth_masked(depth: np.ndarray, size: int, min_weight: float = DEFAULT_MIN_WEIGHT) -> np.ndarray:
    """Resize float depth (0 = invalid) averaging valid pixels only; weak-support pixels become 0."""
    valid = (np.isfinite(depth) & (depth > 0)).astype(np.float32)
    clean = np.where(valid > 0, depth, 0.0).astype(np.float32)
    weight = _resize_float(valid, size)
    total = _resize_float(clean, size)
    keep = weight >= min_weight
    out = np.zeros((size, size), dtype=np.float32)
    out[keep] = (total[keep] / weight[keep]).astype(np.float32)
    return out


def resize_normals_masked(
    normals: np.ndarray, size: int, min_weight: float = DEFAULT_MIN_WEIGHT
) -> np.ndarray:
    """Resize ``H x W x 3`` unit normals (zeros = invalid) by masked averaging, then renormalise."""
    valid = (np.linalg.norm(normals, axis=-1) > 0).astype(np.float32)
    weight = _resize_float(valid, size)
    summed = np.stack([_resize_float(normals[..., k] * valid, size) for k in range(3)], axis=-1)
    norm = np.linalg.norm(summed, axis=-1)
    keep = (weight >= min_weight) & (norm > 1e-6)
    out = np.zeros((size, size, 3), dtype=np.float32)
    out[keep] = (summed[keep] / norm[keep, None]).astype(np.float32)
    return out


def backproject(depth: np.ndarray, fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """3D camera points ``H x W x 3`` (OpenCV frame: x right, y down, z forward) from z-depth."""
    height, width = depth.shape
    z = depth.astype(np.float64)
    u = np.arange(width, dtype=np.float64)[None, :]
    v = np.arange(height, dtype=np.float64)[:, None]
    return np.stack([(u - cx) * z / fx, (v - cy) * z / fy, z], axis=-1)


def _tangent(
    points: np.ndarray, depth: np.ndarray, valid: np.ndarray, axis: int, max_rel_jump: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Tangent along ``axis`` (1 = image x, 0 = image y): central difference, else one-sided.

    A neighbour counts only if it is valid and (when ``max_rel_jump`` is set) its depth is within
    ``max_rel_jump * depth`` of the centre, so differences never straddle an occlusion edge.
    Returns the tangent (unscaled) and where it exists.
    """
    pts = np.moveaxis(points, axis, 0)
    z = np.moveaxis(depth, axis, 0)
    ok = np.moveaxis(valid, axis, 0)
    step = pts[1:] - pts[:-1]
    pair = ok[1:] & ok[:-1]
    if max_rel_jump is not None:
        jump = np.abs(z[1:] - z[:-1])
        fwd_pair = pair & (jump <= max_rel_jump * z[:-1])
        bwd_pair = pair & (jump <= max_rel_jump * z[1:])
    else:
        fwd_pair = bwd_pair = pair
    forward = np.zeros_like(pts)
    backward = np.zeros_like(pts)
    has_fwd = np.zeros(ok.shape, dtype=bool)
    has_bwd = np.zeros(ok.shape, dtype=bool)
    forward[:-1], has_fwd[:-1] = step, fwd_pair
    backward[1:], has_bwd[1:] = step, bwd_pair
    both = (has_fwd & has_bwd)[..., None]
    tangent = np.where(both, 0.5 * (forward + backward), np.where(has_fwd[..., None], forward, backward))
    return np.moveaxis(tangent, 0, axis), np.moveaxis(has_fwd | has_bwd, 0, axis)


def normals_from_depth(
    depth: np.ndarray,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    max_rel_jump: float | None = DEFAULT_MAX_REL_JUMP,
) -> np.ndarray:
    """Unit surface normals ``H x W x 3`` (float32) from z-depth in metres (0 = invalid).

    Pixels are back-projected to camera points (OpenCV frame); the normal is the cross product of
    the image-x and image-y tangents (central differences where both neighbours are usable, else
    one-sided), oriented towards the camera (``n . p < 0``). Zeros where the depth or the needed
    neighbours are invalid. Call it at the source resolution with the source intrinsics.
    """
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    depth = np.where(valid, depth, 0.0)
    points = backproject(depth, fx, fy, cx, cy)
    along_x, ok_x = _tangent(points, depth, valid, axis=1, max_rel_jump=max_rel_jump)
    along_y, ok_y = _tangent(points, depth, valid, axis=0, max_rel_jump=max_rel_jump)
    normal = np.cross(along_x, along_y)
    norm = np.linalg.norm(normal, axis=-1)
    keep = valid & ok_x & ok_y & (norm > _EPS)
    flip = np.sum(normal * points, axis=-1) > 0
    normal = np.where(flip[..., None], -normal, normal)
    out = np.zeros(depth.shape + (3,), dtype=np.float32)
    out[keep] = (normal[keep] / norm[keep, None]).astype(np.float32)
    return out


def square_crop_resize(
    size: int,
    rgb: np.ndarray,
    seg: np.ndarray,
    depth: np.ndarray,
    normal: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Center-crop all four modalities to a square and resize each with its own rule."""
    return (
        resize_rgb(center_crop_square(rgb), size),
        resize_labels(center_crop_square(seg), size),
        resize_depth_masked(center_crop_square(depth), size),
        resize_normals_masked(center_crop_square(normal), size),
    )
