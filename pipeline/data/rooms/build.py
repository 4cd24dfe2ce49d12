"""Scene assembly: the scene type of an index and ``build_scene`` (pure in seed and index)."""

from __future__ import annotations

import numpy as np

from pipeline.data.rooms.camera import place_camera
from pipeline.data.rooms.constants import SCENE_TYPES
from pipeline.data.rooms.layout import Layout
from pipeline.data.rooms.materials import jittered, uniform
from pipeline.data.rooms.recipes import RECIPES, furnish_sparse_room
from pipeline.data.rooms.scene import RoomScene
from pipeline.data.rooms.shell import add_rug, ceiling_lamp, room_materials
from pipeline.data.rooms.wall_items import add_door, add_window

_SCENE_STREAM = 0x5CE7E


def scene_type_of(seed: int, index: int) -> int:
    """Scene type of sample ``index``: every aligned block of 6 indices holds each type once."""
    block = np.random.default_rng([seed, index // len(SCENE_TYPES), _SCENE_STREAM])
    return int(block.permutation(len(SCENE_TYPES))[index % len(SCENE_TYPES)])


def build_scene(seed: int, index: int) -> RoomScene:
    """Lay out room ``index`` for ``seed``: a pure function of its arguments (no pixels yet)."""
    scene = scene_type_of(seed, index)
    name = SCENE_TYPES[scene]
    rng = np.random.default_rng([seed, index])
    lay = Layout(rng, scene)
    room_mats, wall_mats, dado_height, baseboard = room_materials(lay)
    bathroom = name == "bathroom"
    windows = int(rng.random() < 0.5) if bathroom else int(rng.choice([0, 1, 1, 1, 2]))
    for _ in range(windows):  # kitchen windows sit above the counters
        sill = (1.0, 1.3) if bathroom or name == "kitchen" else (0.8, 1.1)
        add_window(lay, sill, (0.5, 0.9) if bathroom else (0.8, 1.8))
    if rng.random() < 0.55:
        add_door(lay, room_mats["trim"])
    RECIPES[name](lay)
    furnish_sparse_room(lay)
    if rng.random() < (0.5 if name in ("bedroom", "living_room") else 0.15):
        add_rug(lay)
    light = ceiling_lamp(lay)
    room = lay.to_scene(
        room_mats=room_mats,
        wall_mats=wall_mats,
        dado_height=dado_height,
        baseboard=baseboard,
        light=np.array(light, dtype=np.float32),
        ambient=uniform(rng, 0.12, 0.3),
        ambient_tint=jittered(rng, (0.95, 0.97, 1.0), 0.02),
        cam_position=np.zeros(3, np.float32),
        cam_rotation=np.eye(3, dtype=np.float32),
        tan_half_fov=1.0,
        noise_sigma=uniform(rng, 1.0, 3.0),
    )
    room.cam_position, room.cam_rotation, room.tan_half_fov = place_camera(lay, room)
    return room
