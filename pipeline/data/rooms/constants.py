"""Constants shared across the rooms package: scene types, resolution bounds, NYUv2 13-class ids."""

from __future__ import annotations

from pipeline.data.schema import NYU13_CLASSES

SCENE_TYPES: tuple[str, ...] = ("bedroom", "kitchen", "living_room", "office", "bathroom", "dining_room")
"""Scene types of the rooms dataset (the ``scene`` field indexes this tuple)."""

MIN_RESOLUTION = 32
MAX_RESOLUTION = 256

(BED, BOOKS, CEILING, CHAIR, FLOOR, FURNITURE, OBJECTS, PICTURE, SOFA, TABLE, TV, WALL, WINDOW) = (
    NYU13_CLASSES.index(name)
    for name in (
        "bed", "books", "ceiling", "chair", "floor", "furniture", "objects",
        "picture", "sofa", "table", "tv", "wall", "window",
    )
)  # fmt: skip
