"""Helpers every importer shares: seeded splits, strict PNG and csv readers, square samples.

Each reader raises :class:`~pipeline.errors.SourceError` naming the file at fault.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipeline.config import SplitParams
from pipeline.data.geometry import crop_resize_map, square_crop_resize
from pipeline.data.schema import Sample
from pipeline.errors import ParamsError, SourceError


def random_split(ids: Sequence[str], split: SplitParams, seed: int) -> dict[str, list[str]]:
    """Seeded split of ``ids`` by ``split.test_fraction`` and ``split.val_fraction``; each sorted."""
    ordered = sorted(ids)
    order = np.random.default_rng(seed).permutation(len(ordered))
    n_test = round(split.test_fraction * len(ordered))
    n_val = round(split.val_fraction * len(ordered))
    parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    return {name: sorted(ordered[i] for i in part) for name, part in parts.items()}


def require_training_images(
    splits: dict[str, list[str]], split: SplitParams, where: Path
) -> dict[str, list[str]]:
    """Return ``splits`` unless its train split is empty (then a :class:`ParamsError` naming the scheme)."""
    if not splits["train"]:
        total = sum(len(ids) for ids in splits.values())
        raise ParamsError(
            f"data.split.scheme={split.scheme!r}: no training images left in {where} "
            f"({total} images; val {len(splits['val'])}, test {len(splits['test'])}); "
            "choose another data.split.scheme or smaller fractions"
        )
    return splits


def _open_png(path: Path) -> Image.Image:
    """Open and fully decode an image, raising :class:`SourceError` naming the file."""
    if not path.is_file():
        raise SourceError(f"{path}: file does not exist")
    try:
        with Image.open(path) as image:
            image.load()
            return image.copy()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise SourceError(f"{path}: cannot decode image ({err})") from err


def read_rgb(path: Path) -> np.ndarray:
    """uint8 ``H x W x 3`` from an 8-bit RGB (or RGBA/L/P) PNG."""
    image = _open_png(path)
    if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        raise SourceError(f"{path}: expected an 8-bit RGB image, got mode {image.mode}")
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def read_uint16(path: Path) -> np.ndarray:
    """uint16 ``H x W`` from a 16-bit single-channel PNG."""
    image = _open_png(path)
    if image.mode not in ("I;16", "I;16B", "I;16L", "I"):
        raise SourceError(f"{path}: expected a 16-bit single-channel PNG, got mode {image.mode}")
    array = np.asarray(image)
    if array.min() < 0 or array.max() > 65535:
        raise SourceError(f"{path}: values outside 0..65535")
    return array.astype(np.uint16)


def read_unit_png(path: Path) -> np.ndarray:
    """float32 ``H x W`` in [0, 1] from a single-channel 8- or 16-bit PNG (value / its type's maximum;
    an RGB PNG gives its first channel, as Taskonomy's grey maps are sometimes stored)."""
    image = _open_png(path)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image).astype(np.float64)
        if array.min() < 0 or array.max() > 65535:
            raise SourceError(f"{path}: values outside 0..65535")
        return (array / 65535.0).astype(np.float32)
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        array = np.asarray(image.convert("RGB"), dtype=np.float32)[..., 0]
        return array / np.float32(255.0)
    raise SourceError(f"{path}: expected an 8- or 16-bit grey PNG, got mode {image.mode}")


def read_label_png(path: Path, max_label: int) -> np.ndarray:
    """Integer ``H x W`` label map (8-bit L/P or 16-bit) whose values must lie in ``0..max_label``."""
    image = _open_png(path)
    if image.mode not in ("L", "P", "I;16", "I;16B", "I;16L", "I"):
        raise SourceError(f"{path}: expected a single-channel label PNG, got mode {image.mode}")
    array = np.asarray(image).astype(np.int64)
    if array.min() < 0 or array.max() > max_label:
        bad = int(array.max()) if array.max() > max_label else int(array.min())
        raise SourceError(f"{path}: label {bad} outside 0..{max_label}")
    return array


def check_same_size(shapes: dict[Path, tuple[int, ...]]) -> None:
    """Raise naming the files when the images do not share one height x width."""
    sizes = {path: shape[:2] for path, shape in shapes.items()}
    if len(set(sizes.values())) > 1:
        listed = ", ".join(f"{path} is {w}x{h}" for path, (h, w) in sizes.items())
        raise SourceError(f"image sizes differ: {listed}")


def read_scene_table(path: Path, key_column: str) -> dict[str, str]:
    """``key -> scene`` from a csv with a header naming ``key_column`` and ``scene``."""
    if not path.is_file():
        raise SourceError(f"{path}: scene table does not exist")
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise SourceError(f"{path}: cannot read csv ({err})") from err
    if not rows or key_column not in rows[0] or "scene" not in rows[0]:
        raise SourceError(f"{path}: expected a header with columns {key_column},scene and at least one row")
    table: dict[str, str] = {}
    for line, row in enumerate(rows, start=2):
        key, scene = (row.get(key_column) or "").strip(), (row.get("scene") or "").strip()
        if not key or not scene:
            raise SourceError(f"{path}: line {line}: empty {key_column} or scene")
        if table.get(key, scene) != scene:
            raise SourceError(f"{path}: line {line}: {key_column} {key} has two scenes")
        table[key] = scene
    return table


def dense_sample(
    key: str,
    scene: int,
    meta: dict[str, Any],
    resolution: int,
    images: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    maps: dict[str, np.ndarray] | None = None,
) -> Sample:
    """Square sample from source-resolution ``(rgb, seg, depth, normal)`` and map tasks."""
    rgb, seg, depth, normal = square_crop_resize(resolution, *images)
    resized = {name: crop_resize_map(values, resolution) for name, values in (maps or {}).items()}
    return Sample(key=key, rgb=rgb, scene=scene, seg=seg, depth=depth, normal=normal, meta=meta, maps=resized)


def check_resolution(resolution: int) -> int:
    if not isinstance(resolution, int) or resolution < 1:
        raise ParamsError(f"data.resolution: expected a positive integer, got {resolution!r}")
    return resolution


def item_index(item_id: str, count: int, where: Path) -> int:
    """1-based labelled index of a 4-digit item id, checked against ``count``."""
    if not (isinstance(item_id, str) and item_id.isdigit() and 1 <= int(item_id) <= count):
        raise SourceError(f"{where}: no labelled image {item_id!r} (ids are 0001..{count:04d})")
    return int(item_id)
