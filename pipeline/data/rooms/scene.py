"""``RoomScene``: a laid-out room ready to render (boxes, materials, light, camera), any resolution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.data.rooms.materials import Color, Material


@dataclass
class RoomScene:
    """A room ready to render: boxes, groups, materials, light and camera (independent of resolution)."""

    scene: int
    size: np.ndarray  # (3,) width, height, depth
    lo: np.ndarray  # (B, 3)
    hi: np.ndarray  # (B, 3)
    cls: np.ndarray  # (B,)
    mat: np.ndarray  # (B,)
    facing: np.ndarray  # (B,)
    group_boxes: list[np.ndarray]
    group_lo: np.ndarray
    group_hi: np.ndarray
    group_occludes: np.ndarray
    materials: list[Material]
    room_mats: dict[str, int]
    wall_mats: tuple[int, int, int, int]
    dado_height: float
    baseboard: float
    light: np.ndarray
    ambient: float
    ambient_tint: Color
    cam_position: np.ndarray
    cam_rotation: np.ndarray  # columns: camera x (right), y (down), z (forward) in world coordinates
    tan_half_fov: float
    noise_sigma: float
