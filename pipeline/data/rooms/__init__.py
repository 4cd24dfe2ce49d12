"""The embedded default dataset ``rooms``: procedural indoor scenes, ray cast with vectorised numpy.

Every sample is a pure function of ``(seed, index, resolution)``. The scene -- a closed room box,
furniture built from axis-aligned boxes, materials, one ceiling light and the camera -- depends on
``(seed, index)`` only, so an index shows the same room at every resolution; the sensor noise has
its own random stream. Labels are exact: the 13 NYUv2 classes, z-depth in metres along the optical
axis and unit normals in the OpenCV camera frame (x right, y down, z forward) facing the camera.

World frame: x and z span the floor (``0..width`` and ``0..depth``), y points up (floor at 0).

Modules: ``build`` lays out a room (``scene_type_of``, ``build_scene``) from ``layout`` (pieces and
their placement), ``furniture``, ``wall_items``, ``recipes`` (per scene type), ``shell`` (room
surfaces and light) and ``camera``, into a ``scene.RoomScene``; ``render`` draws it with ``raycast``
and ``textures``. ``materials`` and ``constants`` hold the shared palettes and ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pipeline.data.rooms.build import build_scene, scene_type_of
from pipeline.data.rooms.constants import (
    BED,
    BOOKS,
    CEILING,
    CHAIR,
    FLOOR,
    FURNITURE,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    OBJECTS,
    PICTURE,
    SCENE_TYPES,
    SOFA,
    TABLE,
    TV,
    WALL,
    WINDOW,
)
from pipeline.data.rooms.layout import LocalBox, Rect
from pipeline.data.rooms.materials import (
    BOOK_SPINES,
    CABINET,
    FABRIC,
    LAMP,
    PAINTING,
    PLAIN,
    SCREEN,
    SPECKLE,
    STRIPES,
    TILES,
    WINDOW_VIEW,
    WOOD,
    Color,
    Material,
)
from pipeline.data.rooms.raycast import light_visibility
from pipeline.data.rooms.render import ROOM_MAPS, check_resolution, render_room, shadow_mask
from pipeline.data.rooms.scene import RoomScene
from pipeline.data.schema import NYU13_CLASSES, Sample
from pipeline.data.source import Source

__all__ = [
    "BED",
    "BOOKS",
    "BOOK_SPINES",
    "CABINET",
    "CEILING",
    "CHAIR",
    "FABRIC",
    "FLOOR",
    "FURNITURE",
    "LAMP",
    "MAX_RESOLUTION",
    "MIN_RESOLUTION",
    "OBJECTS",
    "PAINTING",
    "PICTURE",
    "PLAIN",
    "REFERENCE_OFFSET",
    "SCENE_TYPES",
    "SCREEN",
    "SOFA",
    "SPECKLE",
    "STRIPES",
    "TABLE",
    "TEST_OFFSET",
    "TILES",
    "TV",
    "VAL_OFFSET",
    "WALL",
    "WINDOW",
    "WINDOW_VIEW",
    "WOOD",
    "Color",
    "LocalBox",
    "Material",
    "Rect",
    "RoomScene",
    "RoomsSource",
    "build_scene",
    "light_visibility",
    "render_room",
    "scene_type_of",
    "shadow_mask",
]  # fmt: skip

VAL_OFFSET = 10_000_000
TEST_OFFSET = 20_000_000
REFERENCE_OFFSET = 30_000_000


class RoomsSource(Source):
    """The procedural rooms dataset as a :class:`Source` (picklable; loading renders on demand)."""

    name = "rooms"
    class_names = NYU13_CLASSES
    scene_names = SCENE_TYPES
    map_tasks = ROOM_MAPS
    map_refusals: ClassVar[dict[str, str]] = {
        "curvature": "its rooms are built of flat box faces, so both principal curvatures are 0 at "
        "every pixel (and undefined on the edges): nothing to learn; curvature needs data.source=taskonomy",
    }

    def __init__(
        self,
        resolution: int,
        seed: int,
        train: int,
        val: int,
        test: int,
        reference: int = 0,
        maps: Sequence[str] = (),
    ) -> None:
        check_resolution(resolution)
        sizes = {"train": train, "val": val, "test": test, "reference": reference}
        for split, count in sizes.items():
            if count < 0 or count > VAL_OFFSET:
                raise ValueError(f"{split}: size must be in 0..{VAL_OFFSET}, got {count}")
        self.resolution = int(resolution)
        self.seed = int(seed)
        self.sizes = {split: int(count) for split, count in sizes.items()}
        unknown = sorted(set(maps) - set(ROOM_MAPS))
        if unknown:
            raise ValueError(f"maps: the rooms renderer makes {', '.join(ROOM_MAPS)}, not {unknown}")
        self.maps = tuple(maps)

    def split_ids(self) -> dict[str, Sequence[str]]:
        """Each split its own index range: the reference rooms are never train, val or test rooms."""
        offsets = {"train": 0, "val": VAL_OFFSET, "test": TEST_OFFSET, "reference": REFERENCE_OFFSET}
        return {split: [str(offsets[split] + i) for i in range(count)] for split, count in self.sizes.items()}

    def load(self, item_id: str) -> Sample:
        return render_room(self.seed, int(item_id), self.resolution, self.maps)
