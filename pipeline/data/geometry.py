"""Geometry helpers shared by the importers: square crops, per-modality resizing, normals from depth.

Every importer computes what it needs at the source resolution (normals from depth use the source
intrinsics), then calls :func:`square_crop_resize` to get the square sample the schema asks for.

Resizing rules per modality:

* RGB: PIL bilinear, which is antialiased (its kernel widens with the scale factor when shrinking).
* labels: nearest neighbour, so the output holds only values present in the input.
* depth: masked average, ``resize(depth * valid) / resize(valid)`` with an area (box) filter when
  shrinking (bilinear when growing); output pixels whose valid weight is below ``min_weight`` (0.5)
  become invalid (0), so invalid regions never bleed into valid values.
* normals: masked average the same way, then renormalised to unit length; invalid = all zeros.

Normals from depth (:func:`normals_from_depth`) use the OpenCV camera frame (x right, y down,
z forward) and point towards the camera; see that function and docs/formats.md for the method.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DEFAULT_MIN_WEIGHT = 0.5
"""Output pixels need at least this fraction of valid input weight to stay valid."""

DEFAULT_MAX_REL_JUMP = 0.05
"""Neighbours whose depth differs from the centre's by more than this fraction (per pixel of offset)
are not used for normals, so estimates never straddle an occlusion edge."""

DEFAULT_WINDOW = (6, 2)
"""Plane-fit window of :func:`normals_from_depth`: offsets -6..6 every 2 pixels (7 x 7 samples)."""

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
    """Resize one float channel via PIL mode ``F``: area average when shrinking, bilinear when growing.

    The area (box) filter makes a masked average's weight exactly the valid fraction of the
    output pixel's footprint.
    """
    image = Image.fromarray(np.ascontiguousarray(channel, dtype=np.float32), mode="F")
    shrinking = size <= min(channel.shape[:2])
    resample = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(image.resize((size, size), resample), dtype=np.float64)


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


def _plane_fit(
    depth: np.ndarray,
    valid: np.ndarray,
    intrinsics: tuple[float, float, float, float],
    window: tuple[int, int],
    max_rel_jump: float | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares plane per pixel over a window; returns unoriented normals and where the fit is posed.

    A plane ``n . p = d`` seen through a pinhole is linear in inverse depth: ``1/z = (n . r) / d``
    with ``r = ((u - cx)/fx, (v - cy)/fy, 1)``. So fitting ``1/z = a x + b y + c`` over the window
    (x, y = normalised image coordinates) gives ``n`` proportional to ``(a, b, c)`` in closed form;
    inverse depth is also where sensor noise (disparity) is roughly uniform. ``window`` is
    ``(radius, step)``: offsets ``-radius..radius`` every ``step`` pixels. A window pixel counts
    when valid and (with ``max_rel_jump``) within ``max_rel_jump * depth`` per pixel of offset
    from the centre depth, so a fit never mixes surfaces across an occlusion edge.
    """
    fx, fy, cx, cy = intrinsics
    radius, step = window
    height, width = depth.shape
    padded_depth = np.pad(depth, radius)
    padded_valid = np.pad(valid, radius)
    inverse = np.pad(np.divide(1.0, depth, out=np.zeros_like(depth), where=valid), radius)
    sums = {name: np.zeros((height, width)) for name in ("n", "x", "y", "xx", "xy", "yy", "w", "xw", "yw")}
    for dy in range(-radius, radius + 1, step):
        for dx in range(-radius, radius + 1, step):
            shifted = (slice(radius + dy, radius + dy + height), slice(radius + dx, radius + dx + width))
            usable = valid & padded_valid[shifted]
            if max_rel_jump is not None:
                reach = max_rel_jump * max(abs(dy), abs(dx), 1)
                usable &= np.abs(padded_depth[shifted] - depth) <= reach * depth
            weight = usable.astype(np.float64)
            value = weight * inverse[shifted]
            x, y = dx / fx, dy / fy
            for name, term in (("n", weight), ("x", x * weight), ("y", y * weight), ("w", value)):
                sums[name] += term
            for name, term in (("xx", x * x), ("xy", x * y), ("yy", y * y)):
                sums[name] += term * weight
            sums["xw"] += x * value
            sums["yw"] += y * value
    return _solve_plane(sums, fx, fy, cx, cy)


def _solve_plane(sums: dict[str, np.ndarray], fx: float, fy: float, cx: float, cy: float) -> tuple:
    """Solve the 3 x 3 normal equations per pixel (Cramer's rule) and turn (a, b, c) into a normal."""
    m = (
        (sums["xx"], sums["xy"], sums["x"]),
        (sums["xy"], sums["yy"], sums["y"]),
        (sums["x"], sums["y"], sums["n"]),
    )
    rhs = (sums["xw"], sums["yw"], sums["w"])
    det = _det3(m)
    posed = (sums["n"] >= 6) & (np.abs(det) > 1e-9 * np.abs(sums["xx"] * sums["yy"] * sums["n"]) + _EPS**2)
    safe = np.where(posed, det, 1.0)
    a, b, c_local = (_det3(_replace_column(m, k, rhs)) / safe for k in range(3))
    height, width = sums["n"].shape
    x0 = (np.arange(width)[None, :] - cx) / fx
    y0 = (np.arange(height)[:, None] - cy) / fy
    normal = np.stack([a, b, c_local - a * x0 - b * y0], axis=-1)
    return normal, posed


def _replace_column(m: tuple, column: int, values: tuple) -> tuple:
    return tuple(tuple(values[r] if k == column else m[r][k] for k in range(3)) for r in range(3))


def _det3(m: tuple) -> np.ndarray:
    return (
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
        - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    )


def normals_from_depth(
    depth: np.ndarray,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    method: str = "fit",
    window: tuple[int, int] = DEFAULT_WINDOW,
    max_rel_jump: float | None = DEFAULT_MAX_REL_JUMP,
) -> np.ndarray:
    """Unit surface normals ``H x W x 3`` (float32) from z-depth in metres (0 = invalid).

    Camera frame: OpenCV (x right, y down, z forward). ``method="fit"`` (default) fits a plane by
    least squares over a small window around each pixel (``window = (radius, step)``), which
    averages out the depth quantisation of real sensors; ``method="diff"`` back-projects the
    pixels and takes the cross product of the image-x and image-y tangents (central differences
    where both neighbours are usable, else one-sided). Either way neighbours across a depth jump
    larger than ``max_rel_jump`` of the depth (per pixel of offset) are not used. Normals point
    towards the camera (``n . p < 0``); zeros where the depth or the needed neighbours are
    invalid. Call it at the source resolution with the source intrinsics, before crop/resize.
    """
    depth = np.asarray(depth, dtype=np.float64)
    valid = np.isfinite(depth) & (depth > 0)
    depth = np.where(valid, depth, 0.0)
    points = backproject(depth, fx, fy, cx, cy)
    if method == "fit":
        normal, ok = _plane_fit(depth, valid, (fx, fy, cx, cy), window, max_rel_jump)
    elif method == "diff":
        along_x, ok_x = _tangent(points, depth, valid, axis=1, max_rel_jump=max_rel_jump)
        along_y, ok_y = _tangent(points, depth, valid, axis=0, max_rel_jump=max_rel_jump)
        normal, ok = np.cross(along_x, along_y), ok_x & ok_y
    else:
        raise ValueError(f"normals_from_depth: method must be 'fit' or 'diff', got {method!r}")
    norm = np.linalg.norm(normal, axis=-1)
    keep = valid & ok & (norm > _EPS)
    flip = np.sum(normal * points, axis=-1) > 0
    normal = np.where(flip[..., None], -normal, normal)
    out = np.zeros((*depth.shape, 3), dtype=np.float32)
    out[keep] = (normal[keep] / norm[keep, None]).astype(np.float32)
    return out


def crop_resize_map(values: np.ndarray, size: int) -> np.ndarray:
    """Center-crop an ``H x W`` or ``H x W x C`` float map to a square and resize every channel
    (area average when shrinking): a map task's rule, values stay in their range."""
    square = center_crop_square(values)
    if square.ndim == 2:
        return _resize_float(square, size).astype(np.float32)
    return np.stack([_resize_float(square[..., c], size) for c in range(square.shape[2])], axis=-1).astype(
        np.float32
    )


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
