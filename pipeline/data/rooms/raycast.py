"""Ray casting against the room and its boxes: nearest hits, light visibility, camera rays."""

from __future__ import annotations

import numpy as np

from pipeline.data.rooms.scene import RoomScene


def safe_inverse(dirs: np.ndarray) -> np.ndarray:
    tiny = np.float32(1e-9)
    return (1.0 / np.where(np.abs(dirs) < tiny, np.copysign(tiny, dirs), dirs)).astype(np.float32)


def _slab(
    origins: np.ndarray, inv_dirs: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Entry and exit ray parameters, (N, B) each, of N rays against B boxes (slab method)."""
    origins = np.broadcast_to(origins, inv_dirs.shape)

    def interval(axis: int) -> tuple[np.ndarray, np.ndarray]:
        o, inv = origins[:, axis, None], inv_dirs[:, axis, None]
        t1, t2 = (lo[None, :, axis] - o) * inv, (hi[None, :, axis] - o) * inv
        return np.minimum(t1, t2), np.maximum(t1, t2)

    t_near, t_far = interval(0)
    for axis in (1, 2):
        near, far = interval(axis)
        np.maximum(t_near, near, out=t_near)
        np.minimum(t_far, far, out=t_far)
    return t_near, t_far


def trace(scene: RoomScene, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of rays from ``origin`` (inside the room): ray parameter and box id (-1 = room)."""
    inv = safe_inverse(dirs)
    bound = np.where(inv > 0, scene.size, 0.0).astype(np.float32)
    t = ((bound - origin) * inv).min(axis=1)
    box = np.full(len(dirs), -1, dtype=np.int64)
    g_near, g_far = _slab(origin, inv, scene.group_lo, scene.group_hi)
    candidates = (g_near <= g_far) & (g_far > 0) & (g_near < t[:, None])
    for group in np.flatnonzero(candidates.any(axis=0)):
        rows = np.flatnonzero(candidates[:, group] & (g_near[:, group] < t))
        if rows.size == 0:
            continue
        ids = scene.group_boxes[group]
        near, far = _slab(origin, inv[rows], scene.lo[ids], scene.hi[ids])
        near = np.where((near <= far) & (near > 0), near, np.inf)
        best = near.argmin(axis=1)
        t_best = near[np.arange(rows.size), best]
        closer = t_best < t[rows]
        t[rows[closer]] = t_best[closer]
        box[rows[closer]] = ids[best[closer]]
    return t, box


def light_visibility(scene: RoomScene, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """True where the segment from a surface point (nudged along its world normal) to the light is free."""
    origins = (points + normals * 2e-3).astype(np.float32)
    dirs = (scene.light[None, :] - origins).astype(np.float32)
    inv = safe_inverse(dirs)
    occluders = np.flatnonzero(scene.group_occludes)
    g_near, g_far = _slab(origins, inv, scene.group_lo[occluders], scene.group_hi[occluders])
    candidates = (g_near <= g_far) & (g_far > 0) & (g_near < 1)
    blocked = np.zeros(len(points), dtype=bool)
    for column in np.flatnonzero(candidates.any(axis=0)):
        rows = np.flatnonzero(candidates[:, column] & ~blocked)
        if rows.size == 0:
            continue
        ids = scene.group_boxes[occluders[column]]
        near, far = _slab(origins[rows], inv[rows], scene.lo[ids], scene.hi[ids])
        hit = ((near <= far) & (far > 1e-5) & (near < 1)).any(axis=1)
        blocked[rows[hit]] = True
    return ~blocked


def camera_rays(rotation: np.ndarray, tan_half_fov: float, resolution: int) -> np.ndarray:
    """World ray directions whose camera-frame z component is 1, so the ray parameter is z-depth."""
    focal = (resolution / 2) / tan_half_fov
    coords = (np.arange(resolution, dtype=np.float32) + 0.5 - resolution / 2) / np.float32(focal)
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    cam = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size, dtype=np.float32)], axis=1)
    return cam @ rotation.T
