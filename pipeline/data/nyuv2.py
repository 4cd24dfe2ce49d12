"""NYU Depth V2 importers: the official labelled ``.mat`` file and a folder of PNGs (see docs/formats.md).

Both produce the same samples: key ``nyu-NNNN`` (1-based labelled index), semantic labels mapped to
the 13- or 40-class set, depth in metres, and normals computed from depth at the source resolution
with the NYU intrinsics, then center-cropped and resized to a square.

The module also holds the small helpers the other importers share: seeded splits and PNG readers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.config import SplitParams
from pipeline.data.geometry import normals_from_depth
from pipeline.data.importing import (
    check_resolution,
    check_same_size,
    dense_sample,
    item_index,
    random_split,
    read_label_png,
    read_rgb,
    read_scene_table,
    read_uint16,
    require_training_images,
)
from pipeline.data.schema import IGNORE_LABEL, Sample
from pipeline.data.source import Source
from pipeline.errors import ParamsError, SourceError

NYU_INTRINSICS = (518.8579, 519.4696, 325.5824, 253.7362)
"""fx, fy, cx, cy of the NYUv2 RGB camera for 640 x 480 images."""

NYU_SIZE = (640, 480)
"""Width and height the intrinsics refer to; other sizes get scaled intrinsics."""

NUM_RAW_LABELS = 894
"""Raw NYUv2 label ids are 1..894 (0 = unlabelled)."""

MAT_DATASETS = ("images", "depths", "labels", "sceneTypes")

# ---------------------------------------------------------------------------------------------
# Tables

__data_files__ = ("tables/nyuv2.json",)
"""Read at run time (:func:`nyu_tables`): part of this module's code for DVC and resume."""


@lru_cache(maxsize=1)
def nyu_tables() -> dict[str, Any]:
    """The packaged NYUv2 tables (class maps, class names, official split); see tables/nyuv2.json."""
    text = resources.files("pipeline.data").joinpath("tables/nyuv2.json").read_text()
    return json.loads(text)


def class_names(num_classes: int) -> tuple[str, ...]:
    """Names of the 13 or 40 NYUv2 classes (index = 0-based class id)."""
    _check_num_classes(num_classes)
    return tuple(nyu_tables()[f"classes{num_classes}"])


def raw_label_lut(num_classes: int) -> np.ndarray:
    """uint8 lookup table ``raw id (0..894) -> 0-based class id``, with raw 0 -> 255 (void)."""
    _check_num_classes(num_classes)
    tables = nyu_tables()
    to40 = np.array([0, *tables["raw_to_40"]], dtype=np.int64)
    if num_classes == 13:
        to13 = np.array([0, *tables["map_40_to_13"]], dtype=np.int64)
        to40 = to13[to40]
    return np.where(to40 > 0, to40 - 1, IGNORE_LABEL).astype(np.uint8)


def class_label_lut(num_classes: int) -> np.ndarray:
    """uint8 lookup table ``1-based class id (0..K) -> 0-based id``, with 0 -> 255 (void)."""
    ids = np.arange(num_classes + 1)
    return np.where(ids > 0, ids - 1, IGNORE_LABEL).astype(np.uint8)


def nyu_intrinsics(width: int, height: int) -> tuple[float, float, float, float]:
    """NYU intrinsics scaled from 640 x 480 to ``width x height``."""
    fx, fy, cx, cy = NYU_INTRINSICS
    sx, sy = width / NYU_SIZE[0], height / NYU_SIZE[1]
    return fx * sx, fy * sy, cx * sx, cy * sy


def _check_num_classes(num_classes: int) -> None:
    if num_classes not in (13, 40):
        raise ParamsError(f"data.num_classes: NYUv2 has 13 or 40 classes, got {num_classes!r}")


# ---------------------------------------------------------------------------------------------
# Splits


def official_split(ids: Sequence[str], split: SplitParams, seed: int, where: Path) -> dict[str, list[str]]:
    """NYUv2 official train/test (trainNdxs/testNdxs) restricted to ``ids``; val carved from train."""
    tables = nyu_tables()
    present = set(ids)
    official = {f"{i:04d}" for i in tables["train_ndxs"] + tables["test_ndxs"]}
    stray = sorted(present - official)
    if stray:
        raise SourceError(f"{where}: image {stray[0]} is not one of the 1449 labelled NYUv2 indices")
    train = [f"{i:04d}" for i in tables["train_ndxs"] if f"{i:04d}" in present]
    test = sorted(f"{i:04d}" for i in tables["test_ndxs"] if f"{i:04d}" in present)
    order = np.random.default_rng(seed).permutation(len(train))
    n_val = round(split.val_fraction * len(train))
    val = sorted(train[i] for i in order[:n_val])
    rest = sorted(train[i] for i in order[n_val:])
    return {"train": rest, "val": val, "test": test}


def make_splits(ids: Sequence[str], split: SplitParams, seed: int, where: Path) -> dict[str, list[str]]:
    """Split ``ids`` per ``split.scheme``; the train split must not be empty."""
    if split.scheme == "official":
        splits = official_split(ids, split, seed, where)
    else:
        splits = random_split(ids, split, seed)
    return require_training_images(splits, split, where)


# ---------------------------------------------------------------------------------------------
# The official labelled .mat file


class NYUv2MatSource(Source):
    """``nyu_depth_v2_labeled.mat`` (MATLAB v7.3 = HDF5), read lazily once per process."""

    name = "nyuv2-mat"

    def __init__(self, path: str | Path, resolution: int, num_classes: int, split: SplitParams, seed: int):
        self.path = Path(path)
        self.resolution = check_resolution(resolution)
        self.num_classes = num_classes
        self.class_names = class_names(num_classes)
        self._lut = raw_label_lut(num_classes)
        self._count, self._size, self._scenes = _inspect_mat(self.path)
        self.scene_names = tuple(sorted(set(self._scenes)))
        ids = [f"{i:04d}" for i in range(1, self._count + 1)]
        self._splits = make_splits(ids, split, seed, self.path)
        self._h5: h5py.File | None = None
        self._h5_pid: int | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_h5"] = None
        state["_h5_pid"] = None
        return state

    def split_ids(self) -> dict[str, Sequence[str]]:
        return {name: list(ids) for name, ids in self._splits.items()}

    def load(self, item_id: str) -> Sample:
        index = item_index(item_id, self._count, self.path)
        rgb, depth, raw = self._read(index)
        if not np.isfinite(depth).all():
            raise SourceError(f"{self.path}: depth of labelled image {index} holds NaN or infinite values")
        if raw.max() > NUM_RAW_LABELS:
            raise SourceError(f"{self.path}: labelled image {index} has raw label {int(raw.max())} > 894")
        depth = np.where(depth > 0, depth, 0).astype(np.float32)
        seg = self._lut[raw]
        normal = normals_from_depth(depth, *nyu_intrinsics(depth.shape[1], depth.shape[0]))
        scene = self._scenes[index - 1]
        meta = {"source": self.name, "id": item_id, "scene_name": scene}
        images = (rgb, seg, depth, normal)
        return dense_sample(f"nyu-{item_id}", self.scene_names.index(scene), meta, self.resolution, images)

    def close(self) -> None:
        """Close this process's HDF5 handle (it is reopened on the next load)."""
        if self._h5 is not None:
            self._h5.close()
        self._h5, self._h5_pid = None, None

    def _file(self) -> h5py.File:
        """This process's read-only handle (opened on first use, reopened after a fork)."""
        if self._h5 is None or self._h5_pid != os.getpid():
            try:
                self._h5 = h5py.File(self.path, "r")
            except OSError as err:
                raise SourceError(f"{self.path}: cannot open as HDF5 ({err})") from err
            self._h5_pid = os.getpid()
        return self._h5

    def _read(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB ``H x W x 3``, depth ``H x W`` and raw labels ``H x W`` of 1-based ``index``."""
        handle = self._file()
        try:
            rgb = np.asarray(handle["images"][index - 1]).transpose(2, 1, 0)
            depth = np.asarray(handle["depths"][index - 1], dtype=np.float32).T
            raw = np.asarray(handle["labels"][index - 1]).T
        except (OSError, KeyError, ValueError, RuntimeError) as err:
            raise SourceError(f"{self.path}: cannot read labelled image {index} ({err})") from err
        return np.ascontiguousarray(rgb, dtype=np.uint8), depth, raw.astype(np.int64)


def _inspect_mat(path: Path) -> tuple[int, tuple[int, int], list[str]]:
    """Check the layout of the labelled .mat; return (count, (width, height), scene type per image)."""
    if path.is_dir():
        raise SourceError(
            f"{path}: is a folder, not the NYUv2 labelled .mat file (data.source=nyuv2-mat); point "
            "data.path at nyu_depth_v2_labeled.mat, or use data.source=nyuv2-folder for a folder"
        )
    if not path.is_file():
        raise SourceError(f"{path}: NYUv2 labelled .mat file does not exist")
    try:
        with h5py.File(path, "r") as handle:
            count, size = _check_layout(handle, path)
            scenes = _scene_types(handle, path, count)
    except OSError as err:
        raise SourceError(
            f"{path}: not a readable HDF5 (MATLAB v7.3) file, corrupt or truncated ({err})"
        ) from err
    return count, size, scenes


def _check_layout(handle: h5py.File, path: Path) -> tuple[int, tuple[int, int]]:
    """Validate names, shapes and dtypes of the four datasets (h5py order: N x C x W x H)."""
    missing = [name for name in MAT_DATASETS if not isinstance(handle.get(name), h5py.Dataset)]
    if missing:
        raise SourceError(f"{path}: missing dataset(s) {', '.join(missing)}")
    images, depths, labels = handle["images"], handle["depths"], handle["labels"]
    if images.ndim != 4 or images.shape[1] != 3 or images.dtype != np.uint8:
        raise SourceError(f"{path}: 'images' must be uint8 N x 3 x W x H, got {images.dtype} {images.shape}")
    count, _, width, height = images.shape
    for name, dataset, kind in (("depths", depths, "f"), ("labels", labels, "u")):
        if dataset.shape != (count, width, height) or dataset.dtype.kind != kind:
            raise SourceError(
                f"{path}: '{name}' must be {'float' if kind == 'f' else 'unsigned int'} "
                f"{count} x {width} x {height}, got {dataset.dtype} {dataset.shape}"
            )
    if count == 0:
        raise SourceError(f"{path}: holds no images")
    return count, (width, height)


def _scene_types(handle: h5py.File, path: Path, count: int) -> list[str]:
    """Decode ``sceneTypes`` (object references to uint16 char arrays) into strings."""
    dataset = handle["sceneTypes"]
    if h5py.check_dtype(ref=dataset.dtype) is not h5py.Reference or dataset.size != count:
        raise SourceError(f"{path}: 'sceneTypes' must hold {count} object references, got {dataset.dtype}")
    scenes = []
    for index, ref in enumerate(np.asarray(dataset[()]).ravel(), start=1):
        try:
            chars = np.asarray(handle[ref][()]).ravel()
        except (ValueError, KeyError) as err:
            raise SourceError(f"{path}: sceneTypes of labelled image {index} is unreadable ({err})") from err
        if chars.dtype.kind not in "ui":
            raise SourceError(f"{path}: sceneTypes of labelled image {index} is not a char array")
        scenes.append("".join(chr(int(c)) for c in chars).strip() or "unknown")
    return scenes


# ---------------------------------------------------------------------------------------------
# A folder of PNGs


class NYUv2FolderSource(Source):
    """``rgb/``, ``depth/``, ``label13/`` or ``label40/`` PNGs named by labelled index, and ``scenes.csv``."""

    name = "nyuv2-folder"

    def __init__(self, path: str | Path, resolution: int, num_classes: int, split: SplitParams, seed: int):
        self.path = Path(path)
        self.resolution = check_resolution(resolution)
        self.num_classes = num_classes
        self.class_names = class_names(num_classes)
        self._lut = class_label_lut(num_classes)
        self._label_dir = f"label{num_classes}"
        self._stems = self._find_items()
        table = read_scene_table(self.path / "scenes.csv", "index")
        self._scenes = self._scene_per_item(table)
        self.scene_names = tuple(sorted(set(table.values())))
        self._splits = make_splits(sorted(self._stems), split, seed, self.path)

    def split_ids(self) -> dict[str, Sequence[str]]:
        return {name: list(ids) for name, ids in self._splits.items()}

    def load(self, item_id: str) -> Sample:
        if item_id not in self._stems:
            raise SourceError(f"{self.path}: no image with id {item_id!r}")
        paths = self._paths(item_id)
        rgb = read_rgb(paths["rgb"])
        depth_mm = read_uint16(paths["depth"])
        labels = read_label_png(paths["label"], self.num_classes)
        check_same_size(
            {paths["rgb"]: rgb.shape, paths["depth"]: depth_mm.shape, paths["label"]: labels.shape}
        )
        depth = depth_mm.astype(np.float32) / 1000.0
        normal = normals_from_depth(depth, *nyu_intrinsics(depth.shape[1], depth.shape[0]))
        scene = self._scenes[item_id]
        meta = {"source": self.name, "id": item_id, "scene_name": scene}
        images = (rgb, self._lut[labels], depth, normal)
        return dense_sample(f"nyu-{item_id}", self.scene_names.index(scene), meta, self.resolution, images)

    def _paths(self, item_id: str) -> dict[str, Path]:
        stem = self._stems[item_id]
        return {
            "rgb": self.path / "rgb" / f"{stem}.png",
            "depth": self.path / "depth" / f"{stem}.png",
            "label": self.path / self._label_dir / f"{stem}.png",
        }

    def _find_items(self) -> dict[str, str]:
        """``item id (4-digit index) -> file stem`` of every rgb PNG; checks the companion files exist."""
        if not self.path.is_dir():
            raise SourceError(f"{self.path}: NYUv2 folder does not exist")
        for sub in ("rgb", "depth", self._label_dir):
            if not (self.path / sub).is_dir():
                raise SourceError(f"{self.path / sub}: folder does not exist")
        stems: dict[str, str] = {}
        for png in sorted((self.path / "rgb").glob("*.png")):
            if not png.stem.isdigit() or int(png.stem) < 1:
                raise SourceError(f"{png}: file names must be 1-based labelled indices, e.g. 0001.png")
            stems[f"{int(png.stem):04d}"] = png.stem
        if not stems:
            raise SourceError(f"{self.path / 'rgb'}: no .png images")
        for stem in stems.values():
            for sub in ("depth", self._label_dir):
                if not (self.path / sub / f"{stem}.png").is_file():
                    raise SourceError(f"{self.path / sub / stem}.png: file does not exist")
        return stems

    def _scene_per_item(self, table: dict[str, str]) -> dict[str, str]:
        """Scene name of each item, from scenes.csv rows keyed by (any zero-padding of) the index."""
        by_index: dict[int, str] = {}
        for key, scene in table.items():
            if not key.isdigit():
                raise SourceError(f"{self.path / 'scenes.csv'}: index {key!r} is not a number")
            by_index[int(key)] = scene
        missing = [item_id for item_id in self._stems if int(item_id) not in by_index]
        if missing:
            raise SourceError(f"{self.path / 'scenes.csv'}: no scene for index {missing[0]}")
        return {item_id: by_index[int(item_id)] for item_id in self._stems}
