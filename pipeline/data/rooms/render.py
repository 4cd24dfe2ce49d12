"""Rendering: shading with cast shadows, exposure and sensor noise; ``render_room`` and ``shadow_mask``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.data.dense_maps import camera_reshading, occlusion_edges, texture_edges
from pipeline.data.rooms.build import build_scene
from pipeline.data.rooms.constants import CEILING, FLOOR, MAX_RESOLUTION, MIN_RESOLUTION, SCENE_TYPES, WALL
from pipeline.data.rooms.raycast import camera_rays, light_visibility, safe_inverse, trace
from pipeline.data.rooms.scene import RoomScene
from pipeline.data.rooms.textures import MaterialTable, surface_albedo
from pipeline.data.schema import Sample

_NOISE_STREAM = 0x5E45
ROOM_MAPS = ("edge_texture", "edge_occlusion", "reshading")
"""The map tasks the renderer draws exactly (every face is flat: no curvature)."""


@dataclass
class _Frame:
    t: np.ndarray
    box: np.ndarray
    p: np.ndarray
    axis: np.ndarray
    normal: np.ndarray  # world
    cls: np.ndarray


def _primary_hits(scene: RoomScene, dirs: np.ndarray) -> _Frame:
    origin = scene.cam_position
    t, box = trace(scene, origin, dirs)
    p = origin + t[:, None] * dirs
    axis = np.empty(len(t), dtype=np.int64)
    room = box < 0
    inv = safe_inverse(dirs)
    bound = np.where(inv > 0, scene.size, 0.0).astype(np.float32)
    axis[room] = ((bound[room] - origin) * inv[room]).argmin(axis=1)
    hit = ~room
    ids = box[hit]
    t1 = (scene.lo[ids] - origin) * inv[hit]
    t2 = (scene.hi[ids] - origin) * inv[hit]
    axis[hit] = np.minimum(t1, t2).argmax(axis=1)
    rows = np.arange(len(t))
    sign = -np.sign(inv[rows, axis])
    normal = np.zeros_like(dirs)
    normal[rows, axis] = sign
    cls = np.empty(len(t), dtype=np.uint8)
    cls[hit] = scene.cls[ids]
    cls[room] = np.where(axis[room] == 1, np.where(sign[room] > 0, FLOOR, CEILING), WALL)
    return _Frame(t, box, p, axis, normal, cls)


def _surface_params(scene: RoomScene, frame: _Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Material id, box bounds and facing code per pixel (the room counts as one big box)."""
    n = len(frame.t)
    room = frame.box < 0
    ids = np.where(room, 0, frame.box)  # every scene has at least its lamp box
    mat, lo, hi, facing = scene.mat[ids], scene.lo[ids], scene.hi[ids], scene.facing[ids]
    lo[room] = 0.0
    hi[room] = scene.size
    sign = frame.normal[np.arange(n), frame.axis]
    wall_index = np.select(
        [frame.axis == 2, frame.axis == 0], [np.where(sign > 0, 0, 2), np.where(sign < 0, 1, 3)], 0
    )
    wall_mats = np.array(scene.wall_mats)[wall_index]
    is_wall = room & (frame.cls == WALL)
    dado = is_wall & (frame.p[:, 1] < scene.dado_height)
    mat[room] = np.where(frame.cls[room] == FLOOR, scene.room_mats["floor"], scene.room_mats["ceiling"])
    mat[is_wall] = wall_mats[is_wall]
    mat[dado] = scene.room_mats["dado"]
    mat[is_wall & (frame.p[:, 1] < scene.baseboard)] = scene.room_mats["trim"]
    facing[room] = frame.axis[room] * 2 + (sign[room] > 0)
    return mat, lo, hi, facing


def _room_occlusion(scene: RoomScene, frame: _Frame) -> np.ndarray:
    """Cheap ambient occlusion: room surfaces darken towards the edges where they meet."""
    p = frame.p
    ao = np.ones(len(p), np.float32)
    room = frame.box < 0
    for axis in range(3):
        other = room & (frame.axis != axis)
        gap = np.minimum(p[other, axis], scene.size[axis] - p[other, axis])
        ao[other] *= 1 - 0.35 * np.exp(-gap / 0.25)
    return ao


def _light_geometry(scene: RoomScene, frame: _Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Squared distance and unit direction to the light, and the cosine of incidence, per pixel."""
    to_light = scene.light[None, :] - frame.p
    dist2 = np.einsum("ij,ij->i", to_light, to_light)
    l_dir = to_light / np.sqrt(dist2)[:, None]
    return dist2, l_dir, np.einsum("ij,ij->i", frame.normal, l_dir)


def _lit(scene: RoomScene, frame: _Frame, cosine: np.ndarray, emit: np.ndarray) -> np.ndarray:
    """Pixels facing the light with a free line of sight to it (shadow rays against every occluder)."""
    facing = (cosine > 0) & (emit < 1)
    visible = np.zeros(len(cosine), dtype=bool)
    visible[facing] = light_visibility(scene, frame.p[facing], frame.normal[facing])
    return visible


def _shade(
    scene: RoomScene,
    frame: _Frame,
    albedo: np.ndarray,
    emit: np.ndarray,
    gain: np.ndarray,
    gloss: np.ndarray,
    dirs: np.ndarray,
) -> np.ndarray:
    """Linear RGB radiance: ambient + one point light with cast shadows + Blinn-Phong highlights."""
    lin = albedo**2.2
    dist2, l_dir, cosine = _light_geometry(scene, frame)
    visible = _lit(scene, frame, cosine, emit)
    falloff = 4.0 / (dist2 + 0.5)
    direct = np.where(visible, cosine * falloff, 0.0)
    view = -dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
    half = l_dir + view
    half /= np.linalg.norm(half, axis=1, keepdims=True)
    spec = np.where(visible, np.clip(np.einsum("ij,ij->i", frame.normal, half), 0, 1) ** 40, 0.0) * falloff
    hemi = 1 + 0.15 * frame.normal[:, 1]
    ambient = scene.ambient * hemi * _room_occlusion(scene, frame)
    tint = np.asarray(scene.ambient_tint, np.float32)
    radiance = lin * (ambient[:, None] * tint + direct[:, None] * np.array([1.0, 0.95, 0.86], np.float32))
    radiance += (gloss * 0.5 * spec)[:, None]
    glow = emit > 0
    radiance[glow] = radiance[glow] * (1 - emit[glow, None]) + lin[glow] * (emit[glow] * gain[glow])[:, None]
    return radiance.astype(np.float32)


def _expose(radiance: np.ndarray, emit: np.ndarray, resolution: int) -> np.ndarray:
    """Auto exposure metered on non-emissive pixels, vignetting, a soft highlight shoulder and gamma."""
    lum = radiance @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    lum = lum[emit < 0.5] if (emit < 0.5).sum() > 16 else lum
    scale = 0.7 / max(float(np.percentile(lum, 90)), 1e-4)  # a small hot spot near the lamp may blow out
    coords = (np.arange(resolution, dtype=np.float32) + 0.5) / resolution - 0.5
    r2 = (coords[:, None] ** 2 + coords[None, :] ** 2).ravel()
    exposed = radiance * (scale * (1 - 0.35 * r2))[:, None]
    knee = np.float32(0.75)
    shoulder = knee + (1 - knee) * (1 - np.exp(-(exposed - knee) / (1 - knee)))
    return np.where(exposed < knee, exposed, shoulder).clip(0, 1) ** (1 / 2.2)


def check_resolution(resolution: int) -> None:
    if not isinstance(resolution, (int, np.integer)) or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ValueError(
            f"resolution must be an integer in {MIN_RESOLUTION}..{MAX_RESOLUTION}, got {resolution!r}"
        )


def render_room(seed: int, index: int, resolution: int, maps: Sequence[str] = ()) -> Sample:
    """Render room ``index`` of ``seed`` as a square ``resolution`` image with exact dense labels,
    and the map tasks ``maps`` (of :data:`ROOM_MAPS`) drawn from the same geometry.

    The layout comes from ``np.random.default_rng([seed, index])``; the scene type from a per-block
    permutation (see :func:`scene_type_of`) and the sensor noise from a third stream of ``(seed, index)``.
    Texture edges come from the image before sensor noise (the renderer knows it), occlusion edges
    from the depth and the box each ray hits, reshading from the normals and the camera rays.
    """
    check_resolution(resolution)
    resolution = int(resolution)
    scene = build_scene(seed, index)
    dirs = camera_rays(scene.cam_rotation, scene.tan_half_fov, resolution)
    frame = _primary_hits(scene, dirs)
    table = MaterialTable.of(scene.materials)
    mat, lo, hi, facing = _surface_params(scene, frame)
    sign = frame.normal[np.arange(len(mat)), frame.axis]
    albedo, emit, gain = surface_albedo(scene, table, frame.p, frame.axis, sign, mat, lo, hi, facing)
    radiance = _shade(scene, frame, albedo, emit, gain, table.gloss[mat], dirs)
    srgb = _expose(radiance, emit, resolution)
    noise_rng = np.random.default_rng([seed, index, _NOISE_STREAM])
    noisy = srgb * 255 + noise_rng.normal(0.0, scene.noise_sigma, srgb.shape)
    shape = (resolution, resolution)
    normal_cam = (frame.normal @ scene.cam_rotation).astype(np.float32)
    depth = frame.t.astype(np.float32).reshape(shape)
    drawn = {
        "edge_texture": lambda: texture_edges(srgb.reshape(*shape, 3)),
        "edge_occlusion": lambda: occlusion_edges(depth, _surface_ids(frame).reshape(shape)),
        "reshading": lambda: camera_reshading(
            normal_cam.reshape(*shape, 3), (dirs @ scene.cam_rotation).reshape(*shape, 3)
        ),
    }
    return Sample(
        key=f"room-{index:08d}",
        rgb=np.clip(np.round(noisy), 0, 255).astype(np.uint8).reshape(*shape, 3),
        scene=scene.scene,
        seg=frame.cls.reshape(shape),
        depth=depth,
        normal=normal_cam.reshape(*shape, 3),
        meta={"source": "rooms", "id": int(index), "seed": int(seed), "scene_name": SCENE_TYPES[scene.scene]},
        maps={name: drawn[name]() for name in maps},
    )


def _surface_ids(frame: _Frame) -> np.ndarray:
    """One id per thing a ray can hit: each box, and each of the room's six faces (so a wall meeting
    the floor is two surfaces, whose crease the depth test then tells from an occlusion)."""
    room_face = frame.axis * 2 + (frame.normal[np.arange(len(frame.t)), frame.axis] > 0)
    return np.where(frame.box >= 0, frame.box + 6, room_face)


def shadow_mask(seed: int, index: int, resolution: int) -> np.ndarray:
    """Boolean H x W map of pixels that face the light but are hidden from it by furniture (cast shadow)."""
    check_resolution(resolution)
    scene = build_scene(seed, index)
    frame = _primary_hits(scene, camera_rays(scene.cam_rotation, scene.tan_half_fov, int(resolution)))
    _, _, cosine = _light_geometry(scene, frame)
    no_emit = np.zeros(len(cosine), np.float32)
    return ((cosine > 0) & ~_lit(scene, frame, cosine, no_emit)).reshape(resolution, resolution)
