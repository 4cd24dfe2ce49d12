"""The one sample schema every source produces and every shard holds.

Conventions
-----------
* ``rgb``: uint8, H x W x 3.
* ``seg``: uint8, H x W, class ids ``0..num_classes-1``; ``255`` = ignore/void.
* ``depth``: float32, H x W, metres along the optical axis (z-depth); ``0`` = invalid.
* ``normal``: float32, H x W x 3, unit vectors in the camera frame (x right, y down,
  z forward, OpenCV convention), pointing towards the camera; all zeros = invalid.
* ``scene``: int, index into the source's scene names.
* ``meta``: JSON-serialisable dict with at least ``source`` and ``id`` (original id).
* ``maps``: the map tasks asked for (:mod:`pipeline.data.dense_maps`), float32 H x W (or H x W x C),
  each in [0, 1] but ``curvature``.

Synthetic samples carry only ``rgb``, ``scene`` and ``meta``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.data.dense_maps import MAP_TASKS
from pipeline.errors import SampleError

IGNORE_LABEL = 255

NYU13_CLASSES: tuple[str, ...] = (
    "bed",
    "books",
    "ceiling",
    "chair",
    "floor",
    "furniture",
    "objects",
    "picture",
    "sofa",
    "table",
    "tv",
    "wall",
    "window",
)
"""The 13 NYUv2 classes in the order of the common benchmark (id = position, 0-based)."""

_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass
class Sample:
    """One image with its dense labels, scene type and provenance."""

    key: str
    rgb: np.ndarray
    scene: int
    seg: np.ndarray | None = None
    depth: np.ndarray | None = None
    normal: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    """Map task name -> its map (edges, reshading, curvature), only those the params ask for."""


def validate_key(key: str) -> str:
    """Return ``key`` if it is a legal WebDataset key (letters, digits, ``_`` and ``-``; no dots)."""
    if not isinstance(key, str) or not _KEY_PATTERN.match(key):
        raise SampleError(f"sample key {key!r}: keys may hold only letters, digits, '_' and '-'")
    return key


def validate_sample(
    sample: Sample,
    *,
    num_classes: int,
    num_scenes: int,
    resolution: int | None = None,
    dense: bool = True,
) -> Sample:
    """Check shapes, dtypes and value ranges; raise :class:`SampleError` naming the key and field."""
    key = validate_key(sample.key)

    def fail(what: str) -> None:
        raise SampleError(f"sample {key!r}: {what}")

    rgb = sample.rgb
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        fail(f"rgb must be uint8 HxWx3, got {_describe(rgb)}")
    height, width = rgb.shape[:2]
    if resolution is not None and (height, width) != (resolution, resolution):
        fail(f"rgb is {height}x{width}, expected {resolution}x{resolution}")
    if not isinstance(sample.scene, (int, np.integer)) or not 0 <= int(sample.scene) < num_scenes:
        fail(f"scene {sample.scene!r} out of range 0..{num_scenes - 1}")
    if not dense:
        return sample
    if sample.seg is None or sample.depth is None or sample.normal is None:
        fail("dense sample needs seg, depth and normal")
    seg, depth, normal = sample.seg, sample.depth, sample.normal
    if seg.dtype != np.uint8 or seg.shape != (height, width):
        fail(f"seg must be uint8 {height}x{width}, got {_describe(seg)}")
    bad = (seg >= num_classes) & (seg != IGNORE_LABEL)
    if bad.any():
        fail(f"seg holds label {int(seg[bad][0])} outside 0..{num_classes - 1} (255 = ignore)")
    if depth.dtype != np.float32 or depth.shape != (height, width):
        fail(f"depth must be float32 {height}x{width}, got {_describe(depth)}")
    if not np.isfinite(depth).all():
        fail("depth holds NaN or infinite values (use 0 for invalid pixels)")
    if (depth < 0).any():
        fail("depth holds negative values")
    if normal.dtype != np.float32 or normal.shape != (height, width, 3):
        fail(f"normal must be float32 {height}x{width}x3, got {_describe(normal)}")
    if not np.isfinite(normal).all():
        fail("normal holds NaN or infinite values (use zeros for invalid pixels)")
    norms = np.linalg.norm(normal, axis=-1)
    valid = norms > 0
    if valid.any() and np.abs(norms[valid] - 1.0).max() > 1e-2:
        fail("normal vectors must be unit length (or all zeros where invalid)")
    for name, values in sample.maps.items():
        if name not in MAP_TASKS:
            fail(f"map {name!r} is no map task; known: {', '.join(MAP_TASKS)}")
        spec = MAP_TASKS[name]
        if (
            not isinstance(values, np.ndarray)
            or values.dtype != np.float32
            or values.shape != spec.shape(height, width)
        ):
            shape = "x".join(map(str, spec.shape(height, width)))
            fail(f"{name} must be float32 {shape}, got {_describe(values)}")
        if not np.isfinite(values).all():
            fail(f"{name} holds NaN or infinite values")
        if spec.storage == "png" and (values.min() < 0 or values.max() > 1):
            fail(f"{name} must lie in [0, 1], got {float(values.min()):.3g}..{float(values.max()):.3g}")
    return sample


def _describe(array: Any) -> str:
    if isinstance(array, np.ndarray):
        return f"{array.dtype} {'x'.join(map(str, array.shape))}"
    return type(array).__name__
