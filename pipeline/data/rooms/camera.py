"""Camera placement: random free viewpoints aimed at furniture, scored on a coarse ray-cast view."""

from __future__ import annotations

import math

import numpy as np

from pipeline.data.rooms.constants import FLOOR, WALL, WINDOW
from pipeline.data.rooms.layout import Layout
from pipeline.data.rooms.materials import uniform
from pipeline.data.rooms.raycast import camera_rays, trace
from pipeline.data.rooms.scene import RoomScene


def place_camera(lay: Layout, room: RoomScene, candidates: int = 8) -> tuple[np.ndarray, np.ndarray, float]:
    """The best of a few random free viewpoints aimed at furniture, judged by a coarse 12 x 12 view."""
    rng = lay.rng
    targets = lay.targets or [(lay.width / 2, 0.8, lay.depth / 2, 1.0)]
    weights = np.array([t[3] for t in targets])
    best, best_score = None, -np.inf
    for _ in range(60):
        position = np.array(
            [
                uniform(rng, 0.45, lay.width - 0.45),
                uniform(rng, 1.0, 1.8),
                uniform(rng, 0.45, lay.depth - 0.45),
            ]
        )
        if not _camera_spot_free(lay, position):
            continue
        target = np.array(targets[int(rng.choice(len(targets), p=weights / weights.sum()))][:3])
        pose = _aim(rng, position, target)
        score = _view_score(room, *pose) + rng.normal(0.0, 0.4)
        if score > best_score:
            best, best_score = pose, score
        candidates -= 1
        if candidates == 0:
            break
    if best is None:
        best = _aim(rng, np.array([lay.width / 2, 1.4, lay.depth / 2]), np.array([lay.width / 2, 0.5, 0.0]))
    position, rotation, tan_half_fov = best
    return position.astype(np.float32), rotation.astype(np.float32), tan_half_fov


def _camera_spot_free(lay: Layout, position: np.ndarray, margin: float = 0.35) -> bool:
    return not any(
        x0 - margin < position[0] < x1 + margin and z0 - margin < position[2] < z1 + margin
        for (x0, x1, z0, z1), top in lay.footprints
        if top > 0
    )


def _aim(
    rng: np.random.Generator, position: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Camera pose looking roughly at ``target``: yaw jitter, pitch 5-30 degrees down, roll +-3 degrees."""
    delta = target - position
    yaw = math.atan2(delta[0], delta[2]) + rng.normal(0.0, math.radians(10))
    horizontal = math.hypot(delta[0], delta[2])
    pitch = math.atan2(position[1] - target[1], max(horizontal, 0.5)) + rng.normal(0, math.radians(5))
    pitch = float(np.clip(pitch, math.radians(5), math.radians(30)))
    roll = uniform(rng, -math.radians(3), math.radians(3))
    hfov = math.radians(uniform(rng, 55.0, 70.0))
    return position, _camera_rotation(yaw, pitch, roll), math.tan(hfov / 2)


def _view_score(room: RoomScene, position: np.ndarray, rotation: np.ndarray, tan_half_fov: float) -> float:
    """Favour views with many classes and furniture filling a good part, nothing right at the lens."""
    dirs = camera_rays(rotation.astype(np.float32), tan_half_fov, 12)
    t, box = trace(room, position.astype(np.float32), dirs)
    classes = np.where(box >= 0, room.cls[np.maximum(box, 0)], WALL)
    content = np.isin(classes, (WALL, WINDOW, FLOOR), invert=True).mean()
    crowded = float((t < 0.9).mean())
    distance = abs(float(np.median(t)) - 2.8)
    return 0.35 * len(np.unique(classes)) + 4.0 * min(float(content), 0.4) - 6.0 * crowded - 0.8 * distance


def _camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Columns: camera right, down and forward axes in world coordinates (y up)."""
    forward = np.array([math.sin(yaw) * math.cos(pitch), -math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c, s = math.cos(roll), math.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, forward], axis=1)
