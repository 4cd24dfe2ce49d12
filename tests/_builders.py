"""Builders of small datasets in the exact on-disk formats the importers read (no mocks).

* :func:`build_nyu_mat`: an HDF5 file laid out like ``nyu_depth_v2_labeled.mat`` (MATLAB v7.3):
  512-byte MATLAB userblock, ``images`` N x 3 x W x H uint8, ``depths`` N x W x H float32,
  ``labels`` N x W x H uint16, ``sceneTypes`` 1 x N object references to uint16 char arrays.
* :func:`build_nyu_folder`: ``rgb/``, ``depth/`` (uint16 mm), ``label13/`` or ``label40/``, ``scenes.csv``.
* :func:`build_taskonomy`: ``rgb/``, ``segment_semantic/``, ``depth_zbuffer/``, ``normal/`` PNGs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

MAT_HEADER = (
    b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
)


def write_png(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` (uint8 gray/RGB or uint16 gray) as a PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to a fraction of its bytes (a broken download)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def nyu_arrays(count: int, height: int = 48, width: int = 64, seed: int = 0) -> dict[str, np.ndarray]:
    """RGB ``N x H x W x 3``, depth ``N x H x W`` (m) and raw labels ``N x H x W`` in image order.

    RGB red grows with x and green with y (to catch transposition bugs); depth is a plane that
    grows towards the image bottom; labels: top third raw 4 (ceiling), middle raw 21 (wall),
    bottom raw 11 (floor), a 0 (unlabelled) block at rows 0..5, columns 24..29 (inside the crop).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.zeros((count, height, width, 3), np.uint8)
    rgb[..., 0] = (255 * xx / (width - 1)).astype(np.uint8)
    rgb[..., 1] = (255 * yy / (height - 1)).astype(np.uint8)
    rgb[..., 2] = rng.integers(0, 256, (count, height, width))
    depth = np.stack([(2.0 + 0.02 * yy + 0.1 * i).astype(np.float32) for i in range(count)])
    labels = np.full((count, height, width), 21, np.uint16)
    labels[:, : height // 3] = 4
    labels[:, 2 * height // 3 :] = 11
    labels[:, :6, 24:30] = 0
    return {"rgb": rgb, "depth": depth, "labels": labels}


def build_nyu_mat(
    path: Path,
    scenes: Sequence[str] = ("kitchen", "office", "kitchen", "bedroom", "office", "kitchen"),
    height: int = 48,
    width: int = 64,
    arrays: dict[str, np.ndarray] | None = None,
    skip: str = "",
) -> Path:
    """Write an HDF5 .mat with ``len(scenes)`` labelled images in the MATLAB (transposed) layout."""
    arrays = arrays or nyu_arrays(len(scenes), height, width)
    with h5py.File(path, "w", userblock_size=512) as handle:
        datasets = {
            "images": arrays["rgb"].transpose(0, 3, 2, 1),
            "depths": arrays["depth"].transpose(0, 2, 1),
            "labels": arrays["labels"].transpose(0, 2, 1),
        }
        for name, data in datasets.items():
            if name != skip:  # one gzip chunk per image, as MATLAB -v7.3 writes large arrays
                chunks = (1, *data.shape[1:])
                handle.create_dataset(
                    name, data=np.ascontiguousarray(data), chunks=chunks, compression="gzip"
                )
        if skip != "sceneTypes":
            _write_scene_types(handle, scenes)
    with path.open("r+b") as raw:
        raw.write(MAT_HEADER.ljust(116, b" ") + bytes(8) + b"\x00\x02IM")
    return path


def corrupt_chunk(path: Path, dataset: str, index: int) -> Path:
    """Overwrite the compressed bytes of image ``index`` (0-based) of ``dataset`` with garbage."""
    with h5py.File(path, "r") as handle:
        info = handle[dataset].id.get_chunk_info(index)
    with path.open("r+b") as raw:
        raw.seek(info.byte_offset + 2)
        raw.write(b"\xff" * (info.size - 4))
    return path


def _write_scene_types(handle: h5py.File, scenes: Sequence[str]) -> None:
    """``sceneTypes``: a 1 x N cell of char arrays, stored as object references into ``#refs#``."""
    refs_group = handle.create_group("#refs#")
    refs = []
    for index, scene in enumerate(scenes):
        chars = np.array([[ord(c)] for c in scene], dtype=np.uint16)
        dataset = refs_group.create_dataset(f"s{index}", data=chars)
        dataset.attrs["MATLAB_class"] = np.bytes_("char")
        refs.append(dataset.ref)
    cell = handle.create_dataset("sceneTypes", (1, len(scenes)), dtype=h5py.ref_dtype)
    cell[0, :] = refs
    cell.attrs["MATLAB_class"] = np.bytes_("cell")


def build_nyu_folder(
    root: Path,
    indices: Sequence[int] = (1, 2, 3, 10),
    scenes: Sequence[str] = ("kitchen", "office", "office", "kitchen"),
    num_classes: int = 13,
    height: int = 48,
    width: int = 64,
) -> Path:
    """Write an nyuv2-mini style folder; labels are 1..K with 0 = void."""
    arrays = nyu_arrays(len(indices), height, width)
    classes = np.zeros_like(arrays["labels"], dtype=np.uint8)
    classes[arrays["labels"] == 4] = 3 if num_classes == 13 else 22
    classes[arrays["labels"] == 21] = 12 if num_classes == 13 else 1
    classes[arrays["labels"] == 11] = 5 if num_classes == 13 else 2
    rows = ["index,scene"]
    for k, (index, scene) in enumerate(zip(indices, scenes)):
        name = f"{index:04d}.png"
        write_png(root / "rgb" / name, arrays["rgb"][k])
        write_png(root / "depth" / name, np.round(arrays["depth"][k] * 1000).astype(np.uint16))
        write_png(root / f"label{num_classes}" / name, classes[k])
        rows.append(f"{index:04d},{scene}")
    (root / "scenes.csv").write_text("\n".join(rows) + "\n")
    return root


def encode_taskonomy_normals(normal: np.ndarray) -> np.ndarray:
    """Our OpenCV-frame normals -> Taskonomy PNG colours (x left, y up, z to viewer; 127.5-centred)."""
    return np.clip(np.round((1.0 - normal) * 127.5), 0, 255).astype(np.uint8)


def build_taskonomy(
    root: Path,
    building: str | None = "cauthron",
    views: Sequence[tuple[int, int]] = ((0, 0), (0, 1), (3, 2), (7, 0), (12, 1)),
    size: int = 40,
    seg_domain: str = "segmentsemantic",
    maps: bool = False,
) -> Path:
    """Taskonomy task folders under ``root`` (``<task>/<building>/...`` or flat when ``building`` is None).

    Each view: RGB noise; segment_semantic with 0 (uncertain) / 1 (background) / 2 (bottle) / 17 (vase)
    bands; depth 2 m (1024 units) with a 65535 (missing) corner; normals facing the camera except a
    floor band (pointing up) and the missing corner (grey 128). With ``maps``, also the map folders:
    16-bit texture edges (8192 on the middle column, 0 elsewhere) and occlusion edges (65535 there),
    8-bit reshading (a
    left-to-right ramp 0..255 along x, in RGB) and principal curvature (R 127 + 100, G 127 - 50).
    """
    rng = np.random.default_rng(0)
    for point, view in views:
        seg = np.ones((size, size), np.uint8)
        seg[: size // 4] = 0
        seg[size // 4 : size // 2, : size // 2] = 2
        seg[-4:] = 17
        depth = np.full((size, size), 1024, np.uint16)
        depth[:5, :5] = 65535
        normal = np.zeros((size, size, 3))
        normal[..., 2] = -1.0
        normal[-size // 4 :] = (0.0, -1.0, 0.0)
        encoded = encode_taskonomy_normals(normal)
        encoded[:5, :5] = 128
        stem = f"point_{point}_view_{view}_domain_"
        folder = Path(building) if building else Path()
        write_png(root / "rgb" / folder / f"{stem}rgb.png", rng.integers(0, 256, (size, size, 3), np.uint8))
        write_png(root / "segment_semantic" / folder / f"{stem}{seg_domain}.png", seg)
        write_png(root / "depth_zbuffer" / folder / f"{stem}depth_zbuffer.png", depth)
        write_png(root / "normal" / folder / f"{stem}normal.png", encoded)
        if maps:
            edges = np.zeros((size, size), np.uint16)
            edges[:, size // 2] = 8192
            write_png(root / "edge_texture" / folder / f"{stem}edge_texture.png", edges)
            edges[:, size // 2] = 65535
            write_png(root / "edge_occlusion" / folder / f"{stem}edge_occlusion.png", edges)
            ramp = np.repeat(np.linspace(0, 255, size).round().astype(np.uint8)[None, :, None], size, 0)
            write_png(root / "reshading" / folder / f"{stem}reshading.png", np.repeat(ramp, 3, axis=2))
            curvature = np.zeros((size, size, 3), np.uint8)
            curvature[..., 0], curvature[..., 1], curvature[..., 2] = 227, 77, 127
            write_png(root / "principal_curvature" / folder / f"{stem}principal_curvature.png", curvature)
    return root
