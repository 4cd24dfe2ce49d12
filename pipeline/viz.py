"""Visualisation helpers: colour-coded labels, depth and normals, and sample grids as PNG."""

from __future__ import annotations

import colorsys
import os
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from pipeline.data.dense_maps import MAP_TASKS
from pipeline.data.schema import IGNORE_LABEL, Sample

NYU13_PALETTE: np.ndarray = np.array(
    [
        (0, 0, 255),  # bed
        (232, 88, 47),  # books
        (0, 217, 0),  # ceiling
        (148, 0, 240),  # chair
        (222, 241, 23),  # floor
        (255, 205, 205),  # furniture
        (0, 223, 228),  # objects
        (106, 135, 204),  # picture
        (116, 28, 41),  # sofa
        (240, 35, 235),  # table
        (0, 166, 156),  # tv
        (249, 139, 0),  # wall
        (225, 228, 194),  # window
    ],
    dtype=np.uint8,
)
"""One distinct colour per NYUv2 13-class id (the common benchmark colours)."""

_COLUMN_TITLES = {"rgb": "RGB", "seg": "segmentation", "depth": "depth", "normal": "normals"}
GRID_HEADER = 18
"""Height in pixels of the column-title strip of :func:`sample_grid`."""
GRID_LABEL_WIDTH = 96
"""Width in pixels of the row-label strip of :func:`sample_grid`."""
GRID_GAP = 2
"""White gap in pixels after every cell of :func:`sample_grid`."""


def class_palette(num_classes: int) -> np.ndarray:
    """``NYU13_PALETTE`` for up to 13 classes, else a deterministic palette of well-spread hues."""
    if num_classes <= len(NYU13_PALETTE):
        return NYU13_PALETTE[:num_classes]
    colours = []
    for i in range(num_classes):
        hue = (i * 0.618033988749895) % 1.0
        saturation = 0.55 + 0.45 * ((i * 7) % 3) / 2
        value = 0.6 + 0.4 * ((i * 5) % 4) / 3
        colours.append([round(255 * c) for c in colorsys.hsv_to_rgb(hue, saturation, value)])
    return np.array(colours, dtype=np.uint8)


def colorize_seg(seg: np.ndarray, palette: np.ndarray | None = None) -> np.ndarray:
    """Class ids (H x W) to colours (uint8 H x W x 3); ignore (255) and unknown ids are black."""
    seg = np.asarray(seg)
    if palette is None:
        labels = seg[seg != IGNORE_LABEL]
        top = int(labels.max()) + 1 if labels.size else 0
        palette = class_palette(max(top, len(NYU13_PALETTE)))
    palette = np.asarray(palette, dtype=np.uint8)
    lookup = np.zeros((256, 3), dtype=np.uint8)
    count = min(len(palette), IGNORE_LABEL)
    lookup[:count] = palette[:count]
    return lookup[seg.astype(np.uint8)]


def colorize_depth(depth: np.ndarray, vmax: float | None = None) -> np.ndarray:
    """Depth in metres (H x W) to a perceptual colormap (near = dark); invalid (<= 0) is black."""
    depth = np.asarray(depth, dtype=np.float32)
    valid = np.isfinite(depth) & (depth > 0)
    if vmax is None:
        vmax = float(np.percentile(depth[valid], 99)) if valid.any() else 1.0
    scaled = np.clip(depth / max(vmax, 1e-6), 0.0, 1.0)
    colours = (colormaps["magma"](scaled)[..., :3] * 255).round().astype(np.uint8)
    colours[~valid] = 0
    return colours


def colorize_normal(normal: np.ndarray) -> np.ndarray:
    """Unit normals (H x W x 3) as ``(n + 1) / 2 * 255``; invalid (all-zero) normals are black."""
    normal = np.asarray(normal, dtype=np.float32)
    colours = np.clip((normal + 1.0) * 0.5 * 255.0, 0, 255).round().astype(np.uint8)
    colours[~np.any(normal != 0, axis=-1)] = 0
    return colours


def colorize_map(values: np.ndarray) -> np.ndarray:
    """A map task as grey (one channel, [0, 1]) or, for curvature's two channels in [-1, 1], red
    and green around mid-grey; C x H x W or H x W in, H x W x 3 uint8 out."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 2:
        values = values[None]
    if values.shape[0] == 1:
        grey = np.clip(values[0] * 255.0, 0, 255).round().astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    channels = [np.clip((values[c] + 1.0) * 127.5, 0, 255) for c in range(min(values.shape[0], 2))]
    return np.stack([*channels, np.full_like(channels[0], 127.5)], axis=-1).round().astype(np.uint8)


def _columns(samples: Sequence[Sample]) -> list[str]:
    present = ["rgb"]
    for name in ("seg", "depth", "normal"):
        if any(getattr(sample, name) is not None for sample in samples):
            present.append(name)
    maps = sorted({name for sample in samples for name in sample.maps})
    return present + [name for name in MAP_TASKS if name in maps]


def _grid_palette(samples: Sequence[Sample]) -> np.ndarray:
    """One palette for all rows, so a class keeps its colour across the grid."""
    top = 0
    for sample in samples:
        if sample.seg is not None:
            labels = sample.seg[sample.seg != IGNORE_LABEL]
            top = max(top, int(labels.max()) + 1 if labels.size else 0)
    return class_palette(max(top, len(NYU13_PALETTE)))


def _panel(sample: Sample, column: str, cell: int, palette: np.ndarray) -> Image.Image:
    value = sample.maps.get(column) if column in MAP_TASKS else getattr(sample, column)
    if value is None:
        array = np.full((cell, cell, 3), 40, dtype=np.uint8)
    elif column == "rgb":
        array = np.asarray(value, dtype=np.uint8)
    elif column == "seg":
        array = colorize_seg(value, palette)
    elif column == "depth":
        array = colorize_depth(value)
    elif column == "normal":
        array = colorize_normal(value)
    else:
        array = colorize_map(np.moveaxis(value, -1, 0) if value.ndim == 3 else value)
    image = Image.fromarray(array)
    if image.size != (cell, cell):
        resample = Image.Resampling.BILINEAR if column in ("rgb", "depth") else Image.Resampling.NEAREST
        image = image.resize((cell, cell), resample)
    return image


def sample_grid(
    samples: Sequence[Sample], scene_names: Sequence[str] | None = None, cell: int | None = None
) -> Image.Image:
    """One row per sample, columns RGB | segmentation | depth | normals (those present), labelled."""
    if not samples:
        raise ValueError("sample_grid needs at least one sample")
    cell = cell or max(96, max(sample.rgb.shape[0] for sample in samples))
    columns = _columns(samples)
    palette = _grid_palette(samples)
    font = ImageFont.load_default()
    header, label_w, gap = GRID_HEADER, GRID_LABEL_WIDTH, GRID_GAP
    width = label_w + len(columns) * (cell + gap)
    height = header + len(samples) * (cell + gap)
    grid = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for j, column in enumerate(columns):
        title = _COLUMN_TITLES.get(column, column.replace("_", " "))
        draw.text((label_w + j * (cell + gap) + 4, 3), title, fill=(0, 0, 0), font=font)
    for i, sample in enumerate(samples):
        top = header + i * (cell + gap)
        draw.text((4, top + cell // 2 - 12), _row_label(sample, scene_names), fill=(0, 0, 0), font=font)
        draw.text((4, top + cell // 2 + 2), sample.key[:15], fill=(110, 110, 110), font=font)
        for j, column in enumerate(columns):
            grid.paste(_panel(sample, column, cell, palette), (label_w + j * (cell + gap), top))
    return grid


def _row_label(sample: Sample, scene_names: Sequence[str] | None) -> str:
    if scene_names is not None and 0 <= int(sample.scene) < len(scene_names):
        return str(scene_names[int(sample.scene)])
    return f"scene {int(sample.scene)}"


def save_image(image: Image.Image, path: str | Path) -> Path:
    """Write ``image`` atomically: to a temporary name in the same folder, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image_format = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    temp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temp, "xb") as stream:  # plain open: the file gets the usual umask permissions
            image.save(stream, format=image_format)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def scene_grid(images: np.ndarray, columns: int, scene_names: Sequence[str]) -> Image.Image:
    """A grid with one labelled row per scene (``images`` row-major, ``columns`` per row)."""
    rows = len(scene_names)
    side = images.shape[1]
    cell = max(side, 64)
    label_w, gap = 96, 2
    grid = Image.new("RGB", (label_w + columns * (cell + gap), rows * (cell + gap)), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default()
    for row, name in enumerate(scene_names):
        top = row * (cell + gap)
        draw.text((4, top + cell // 2 - 6), str(name), fill=(0, 0, 0), font=font)
        for col in range(columns):
            tile = Image.fromarray(images[row * columns + col])
            if side != cell:
                tile = tile.resize((cell, cell), Image.Resampling.NEAREST)
            grid.paste(tile, (label_w + col * (cell + gap), top))
    return grid
