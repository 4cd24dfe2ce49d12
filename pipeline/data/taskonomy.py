"""Tiny-Taskonomy importer: rgb, segment_semantic, depth_zbuffer and normal PNGs (see docs/formats.md).

Conventions (sources in docs/formats.md):

* ``segment_semantic``: 0 = "uncertain" (ignore), 1 = background, 2..17 = the 16 COCO classes of
  :data:`TASKONOMY_CLASSES` [1:]; we store ``value - 1`` (so background = 0) and 0 -> 255.
* ``depth_zbuffer``: uint16, 1/512 m per unit, 65535 = missing.
* ``normal``: 8-bit RGB, 127.5-centred: ``d = rgb / 127.5 - 1`` is the outward normal in a frame
  with x to the image left, y up and z towards the viewer, i.e. ``d = -n`` for our OpenCV frame
  (x right, y down, z forward). Grey (128, 128, 128) marks missing mesh.
* ``edge_texture``, ``edge_occlusion``, ``reshading`` (read when ``model.tasks`` asks for them):
  grey PNGs, 8 or 16 bit, divided by the type's maximum into [0, 1] (an RGB one gives its first
  channel). Texture edges fill only the bottom of the 16-bit range: as omnidata's task parameters
  do, they are clamped to :data:`EDGE_TEXTURE_CLAMP` and divided by it.
* ``principal_curvature`` -> the ``curvature`` task: 8-bit RGB, the first two channels are the
  principal curvatures with 0 at 127; we store ``(v - 127) / 127``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.config import SplitParams
from pipeline.data.dense_maps import decode_taskonomy_curvature
from pipeline.data.importing import (
    check_resolution,
    check_same_size,
    dense_sample,
    random_split,
    read_label_png,
    read_rgb,
    read_scene_table,
    read_uint16,
    read_unit_png,
    require_training_images,
)
from pipeline.data.schema import IGNORE_LABEL, Sample
from pipeline.data.source import Source
from pipeline.errors import ParamsError, SourceError

TASKONOMY_CLASSES: tuple[str, ...] = (
    "background",
    "bottle",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "dining table",
    "toilet",
    "tv",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "book",
    "clock",
    "vase",
)
"""Our 0-based classes: PNG value ``v`` in 1..17 is class ``v - 1``; PNG 0 (uncertain) -> 255."""

DEPTH_UNITS_PER_METRE = 512.0
DEPTH_MISSING = 65535
EDGE_TEXTURE_CLAMP = 0.25
"""``edge_texture``: values (in [0, 1] of the 16-bit range) above this are clamped, then scaled to 1."""
NORMAL_MIN_LENGTH = 0.5
"""Decoded normals shorter than this (e.g. the grey of missing mesh) are invalid."""

TASKS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "segment_semantic": (("segment_semantic", "segmentsemantic"), ("segmentsemantic", "segment_semantic")),
    "depth_zbuffer": (("depth_zbuffer",), ("depth_zbuffer",)),
    "normal": (("normal",), ("normal",)),
}
"""Per label task: accepted folder names and accepted ``domain_<name>`` spellings in file names."""

MAP_FOLDERS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "edge_texture": (("edge_texture",), ("edge_texture",)),
    "edge_occlusion": (("edge_occlusion",), ("edge_occlusion",)),
    "reshading": (("reshading",), ("reshading",)),
    "curvature": (("principal_curvature", "curvature"), ("principal_curvature", "curvature")),
}
"""Per map task (our name): accepted folder names and ``domain_<name>`` spellings, as :data:`TASKS`."""

_RGB_NAME = re.compile(r"^point_(\d+)_view_(\d+)_domain_rgb\.png$")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class TaskonomySource(Source):
    """Tiny-Taskonomy folders under ``path`` (one building, or one sub-folder per building)."""

    name = "taskonomy"
    class_names = TASKONOMY_CLASSES
    map_tasks = tuple(MAP_FOLDERS)

    def __init__(
        self,
        path: str | Path,
        scenes_csv: str | Path | None,
        resolution: int,
        split: SplitParams,
        seed: int,
        maps: Sequence[str] = (),
    ):
        self.path = Path(path)
        self.maps = tuple(maps)
        if split.scheme == "official":
            raise ParamsError("data.split.scheme='official' is NYUv2-only; use 'random' for taskonomy")
        self.resolution = check_resolution(resolution)
        self._items = _discover(self.path, self.maps)
        csv_path = _resolve_csv(scenes_csv, self.path)
        table = read_scene_table(csv_path, "image")
        self._scenes = {item_id: _scene_for(item, table, csv_path) for item_id, item in self._items.items()}
        self.scene_names = tuple(sorted(set(table.values())))
        self._splits = require_training_images(random_split(list(self._items), split, seed), split, self.path)

    def split_ids(self) -> dict[str, Sequence[str]]:
        return {name: list(ids) for name, ids in self._splits.items()}

    def load(self, item_id: str) -> Sample:
        item = self._items.get(item_id)
        if item is None:
            raise SourceError(f"{self.path}: no Taskonomy image with id {item_id!r}")
        paths = item["files"]
        rgb = read_rgb(paths["rgb"])
        raw_seg = read_label_png(paths["segment_semantic"], len(TASKONOMY_CLASSES))
        depth = decode_depth(read_uint16(paths["depth_zbuffer"]))
        normal_rgb = read_rgb(paths["normal"])
        arrays = {"rgb": rgb, "segment_semantic": raw_seg, "depth_zbuffer": depth, "normal": normal_rgb}
        check_same_size({paths[task]: array.shape for task, array in arrays.items()})
        seg = np.where(raw_seg > 0, raw_seg - 1, IGNORE_LABEL).astype(np.uint8)
        normal = decode_normals(normal_rgb, depth > 0)
        scene = self._scenes[item_id]
        meta = {"source": self.name, "id": item_id, "scene_name": scene, "building": item["building"]}
        images = (rgb, seg, depth, normal)
        maps = {name: _read_map(name, paths[name]) for name in self.maps}
        check_same_size({paths["rgb"]: rgb.shape, **{paths[name]: maps[name].shape for name in maps}})
        return dense_sample(item["key"], self.scene_names.index(scene), meta, self.resolution, images, maps)


def _read_map(task: str, path: Path) -> np.ndarray:
    """One map task's array at source resolution, in our convention (module docstring)."""
    if task == "curvature":
        return decode_taskonomy_curvature(read_rgb(path))
    if task == "edge_texture":
        return np.minimum(read_unit_png(path) / EDGE_TEXTURE_CLAMP, 1.0).astype(np.float32)
    return read_unit_png(path)


def decode_depth(raw: np.ndarray) -> np.ndarray:
    """Metres from Taskonomy z-buffer units (1/512 m); 65535 (missing) and 0 become 0 (invalid)."""
    depth = raw.astype(np.float32) / DEPTH_UNITS_PER_METRE
    depth[(raw == DEPTH_MISSING) | (raw == 0)] = 0.0
    return depth


def decode_normals(encoded: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Our unit normals (OpenCV frame, towards the camera) from a Taskonomy normal PNG.

    ``d = rgb / 127.5 - 1`` has x = image left, y = up, z = towards the viewer, so ``n = -d``.
    Zeros where ``d`` is shorter than :data:`NORMAL_MIN_LENGTH` or ``valid`` is False.
    """
    normal = 1.0 - encoded.astype(np.float64) / 127.5
    length = np.linalg.norm(normal, axis=-1)
    keep = length >= NORMAL_MIN_LENGTH
    if valid is not None:
        keep &= valid
    out = np.zeros((*encoded.shape[:2], 3), dtype=np.float32)
    out[keep] = (normal[keep] / length[keep, None]).astype(np.float32)
    return out


def item_key(building: str, point: str, view: str) -> str:
    """Sample key ``tt-<building>-p<point>-v<view>`` (building sanitised to letters/digits/_/-)."""
    safe = _KEY_UNSAFE.sub("_", building).strip("_") or "building"
    return f"tt-{safe}-p{int(point)}-v{int(view)}"


def _discover(root: Path, maps: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
    """Every ``rgb/**/point_P_view_V_domain_rgb.png`` with its three label files (and the files of
    the map tasks ``maps``), keyed by item id."""
    rgb_dir = root / "rgb"
    if not root.is_dir():
        raise SourceError(f"{root}: Taskonomy folder does not exist")
    if not rgb_dir.is_dir():
        raise SourceError(f"{rgb_dir}: folder does not exist (expected rgb/ next to the label folders)")
    folders = {**TASKS, **{name: MAP_FOLDERS[name] for name in maps}}
    task_dirs = {task: _task_dir(root, task, folders) for task in folders}
    listings: dict[tuple[str, Path], set[str]] = {}
    items: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    for rgb_path in sorted(rgb_dir.rglob("point_*_view_*_domain_rgb.png")):
        match = _RGB_NAME.match(rgb_path.name)
        if match is None:
            continue
        relative = rgb_path.parent.relative_to(rgb_dir)
        building = relative.parts[-1] if relative.parts else root.resolve().name
        point, view = match.groups()
        files = {"rgb": rgb_path}
        for task, task_dir in task_dirs.items():
            files[task] = _companion(task_dir / relative, task, point, view, listings, folders)
        item_id = "/".join((*relative.parts, f"point_{point}_view_{view}"))
        key = item_key(building, point, view)
        if key in keys:
            raise SourceError(f"{rgb_path}: sample key {key} repeats {keys[key]}; building names must differ")
        keys[key] = item_id
        items[item_id] = {
            "id": item_id,
            "files": files,
            "building": building,
            "key": key,
            "stem": rgb_path.stem,
        }
    if not items:
        raise SourceError(f"{rgb_dir}: no point_<p>_view_<v>_domain_rgb.png images")
    return items


def _task_dir(root: Path, task: str, folders: dict[str, tuple[tuple[str, ...], tuple[str, ...]]]) -> Path:
    for folder in folders[task][0]:
        if (root / folder).is_dir():
            return root / folder
    raise SourceError(f"{root / folders[task][0][0]}: folder does not exist (needed by task {task})")


def _companion(
    folder: Path,
    task: str,
    point: str,
    view: str,
    listings: dict,
    folders: dict[str, tuple[tuple[str, ...], tuple[str, ...]]],
) -> Path:
    """The label file of ``task`` for (point, view) in ``folder``, under any accepted domain spelling."""
    names = listings.get((task, folder))
    if names is None:
        names = {entry.name for entry in folder.iterdir()} if folder.is_dir() else set()
        listings[(task, folder)] = names
    for domain in folders[task][1]:
        name = f"point_{point}_view_{view}_domain_{domain}.png"
        if name in names:
            return folder / name
    expected = folder / f"point_{point}_view_{view}_domain_{folders[task][1][0]}.png"
    raise SourceError(f"{expected}: file does not exist")


def _resolve_csv(scenes_csv: str | Path | None, root: Path) -> Path:
    """The user's scene table; a relative path is tried as given, then under the dataset folder."""
    if scenes_csv is None or str(scenes_csv) == "":
        raise ParamsError("data.taskonomy.scenes_csv: taskonomy needs a csv with columns image,scene")
    path = Path(scenes_csv)
    if not path.is_file() and not path.is_absolute() and (root / path).is_file():
        return root / path
    return path


def _scene_for(item: dict[str, Any], table: dict[str, str], csv_path: Path) -> str:
    """Scene of an item; the csv ``image`` column holds the item id, ``building/stem`` or a bare stem."""
    stem, building, item_id = item["stem"], item["building"], item["id"]
    point_view = stem.removesuffix("_domain_rgb")
    for candidate in (item_id, f"{building}/{point_view}", f"{building}/{stem}", stem, point_view):
        if candidate in table:
            return table[candidate]
    raise SourceError(f"{csv_path}: no scene for image {item_id} ({item['files']['rgb']})")
