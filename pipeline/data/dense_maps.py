"""Dense maps beyond segmentation, depth and normals: Taskonomy's edges, reshading and curvature.

A *map task* is a per-pixel regression target a source may carry besides the three base tasks.
Shards hold one only when ``model.tasks`` asks for it (so the base shards keep their bytes):

=================  ========  ===========================================================  ==========
task               channels  meaning                                                      stored as
=================  ========  ===========================================================  ==========
``edge_texture``   1         Sobel magnitude of the blurred luminance (Taskonomy "2D      8-bit PNG
                             edges"): where the *image* changes, texture included         in [0, 1]
``edge_occlusion`` 1         1 on the near side of a depth discontinuity (Taskonomy "3D   8-bit PNG
                             edges"): where one surface hides another                     in [0, 1]
``reshading``      1         shading of the geometry with white albedo under one point    8-bit PNG
                             light at the camera (Taskonomy "reshading"): ``cos`` of the  in [0, 1]
                             angle between the normal and the ray to the camera
``curvature``      2         principal curvatures (Taskonomy ``principal_curvature``,     float16
                             ``(v - 127) / 127`` of its first two channels)               ``.npy``
=================  ========  ===========================================================  ==========

This module is torch-free: the shard writer, the importers and the renderer use it; the task
registry adds each map's loss and metric on top.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

BASE_TASKS = ("seg", "depth", "normal")
"""The tasks every labelled sample carries."""

TEXTURE_EDGE_SIGMA = 1.0
"""Gaussian blur (pixels) before the Sobel filter, as Taskonomy's texture edges."""
TEXTURE_EDGE_SCALE = 4.0
"""Sobel magnitude (3 x 3 kernel, gain 8, of luminance in [0, 1]) that maps to 1: a black-white step
blurred at σ = 1 peaks at 2.56, i.e. 0.64, so strong edges stay below the clip."""
OCCLUSION_JUMP = 0.1
"""Relative depth jump ``(z_far - z_near) / z_near`` between 4-neighbours on different surfaces that
makes the nearer pixel an occlusion edge. A crease (two faces meeting) stays well below it at 64 px
and above; a thing in front of a wall or of the floor is far above it."""


@dataclass(frozen=True)
class MapTask:
    """How one map task is shaped and stored."""

    name: str
    channels: int
    storage: Literal["png", "npy"]
    """``png``: values in [0, 1], quantised to 1/255 in an 8-bit PNG; ``npy``: float16, any sign."""

    @property
    def field(self) -> str:
        """The field name inside a stored sample (``<key>.<field>``)."""
        return f"{self.name}.{self.storage}"

    def shape(self, height: int, width: int) -> tuple[int, ...]:
        """The numpy shape of this map at ``height`` x ``width`` (H x W for one channel)."""
        return (height, width) if self.channels == 1 else (height, width, self.channels)


MAP_TASKS: dict[str, MapTask] = {
    "edge_texture": MapTask("edge_texture", 1, "png"),
    "edge_occlusion": MapTask("edge_occlusion", 1, "png"),
    "reshading": MapTask("reshading", 1, "png"),
    "curvature": MapTask("curvature", 2, "npy"),
}
"""Map task name -> its shape and storage."""


def map_tasks_of(tasks: Sequence[str]) -> tuple[str, ...]:
    """The map tasks among ``tasks`` (``model.tasks``), in their order."""
    return tuple(task for task in tasks if task in MAP_TASKS)


def quantise_unit(values: np.ndarray) -> np.ndarray:
    """uint8 ``round(255 v)`` of values in [0, 1]: the stored form of a ``png`` map."""
    return np.clip(np.round(np.asarray(values, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma in [0, 1] of a uint8 (or [0, 1] float) H x W x 3 image."""
    image = np.asarray(rgb, dtype=np.float32)
    if np.asarray(rgb).dtype == np.uint8:
        image = image / 255.0
    return (image @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)


def texture_edges(rgb: np.ndarray) -> np.ndarray:
    """Texture edges in [0, 1]: the Sobel gradient magnitude of the σ = 1 blurred luminance over
    :data:`TEXTURE_EDGE_SCALE`, clipped (borders replicated, so the frame itself is no edge)."""
    grey = cv2.GaussianBlur(luminance(rgb), (0, 0), TEXTURE_EDGE_SIGMA, borderType=cv2.BORDER_REPLICATE)
    dx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3, borderType=cv2.BORDER_REPLICATE)
    dy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3, borderType=cv2.BORDER_REPLICATE)
    return np.clip(np.hypot(dx, dy) / TEXTURE_EDGE_SCALE, 0.0, 1.0).astype(np.float32)


def occlusion_edges(depth: np.ndarray, surface: np.ndarray, jump: float = OCCLUSION_JUMP) -> np.ndarray:
    """1 where a pixel hides its 4-neighbour: the two lie on different surfaces (``surface`` ids,
    e.g. the object each pixel's ray hits) and the neighbour is farther by more than ``jump`` times
    the pixel's depth; 0 elsewhere. Pixels without depth (0) are never edges nor occluded."""
    depth = np.asarray(depth, dtype=np.float64)
    edges = np.zeros(depth.shape, dtype=bool)
    for axis in (0, 1):
        near_a = np.take(depth, range(depth.shape[axis] - 1), axis=axis)
        near_b = np.take(depth, range(1, depth.shape[axis]), axis=axis)
        id_a = np.take(surface, range(surface.shape[axis] - 1), axis=axis)
        id_b = np.take(surface, range(1, surface.shape[axis]), axis=axis)
        valid = (near_a > 0) & (near_b > 0) & (id_a != id_b)
        a_hides_b = valid & (near_b - near_a > jump * near_a)
        b_hides_a = valid & (near_a - near_b > jump * near_b)
        if axis == 0:
            edges[:-1] |= a_hides_b
            edges[1:] |= b_hides_a
        else:
            edges[:, :-1] |= a_hides_b
            edges[:, 1:] |= b_hides_a
    return edges.astype(np.float32)


def camera_reshading(normal: np.ndarray, rays: np.ndarray) -> np.ndarray:
    """Shading in [0, 1] of white Lambertian geometry lit by a point light at the camera, without
    falloff: ``max(0, -n . r / |r|)`` for the unit normal ``n`` (pointing towards the camera) and the
    camera-frame ray ``r`` of each pixel. A light at the eye casts no visible shadow, so this is
    exact; pixels without a normal (all zeros) get 0."""
    ray = np.asarray(rays, dtype=np.float64)
    ray = ray / np.linalg.norm(ray, axis=-1, keepdims=True)
    cosine = -np.einsum("...c,...c->...", np.asarray(normal, dtype=np.float64), ray)
    return np.clip(cosine, 0.0, 1.0).astype(np.float32)


def decode_taskonomy_curvature(encoded: np.ndarray) -> np.ndarray:
    """H x W x 2 float32 principal curvatures from Taskonomy's 8-bit encoding (zero = 127)."""
    return ((encoded[..., :2].astype(np.float32) - 127.0) / 127.0).astype(np.float32)
