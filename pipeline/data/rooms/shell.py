"""The room shell: wall, floor, ceiling, dado and trim materials, the rug and the ceiling lamp."""

from __future__ import annotations

from pipeline.data.rooms.constants import FLOOR, OBJECTS
from pipeline.data.rooms.layout import Layout
from pipeline.data.rooms.materials import (
    ALL_FABRICS,
    ALL_WALLS,
    BRIGHT,
    CARPETS,
    FABRIC,
    LAMP,
    PLAIN,
    SPECKLE,
    STRIPES,
    TILES,
    TILES_DARK,
    TILES_LIGHT,
    WALLS_BOLD,
    WOOD,
    WOODS,
    choose,
    darker,
    jittered,
    uniform,
)


def room_materials(lay: Layout) -> tuple[dict[str, int], tuple[int, int, int, int], float, float]:
    rng = lay.rng
    style = lay.style
    wall_color = choose(rng, lay.colors("wall"), 0.03)
    if rng.random() < 0.15:
        wall = lay.material(
            STRIPES,
            wall_color,
            jittered(rng, wall_color, 0.08),
            scale=uniform(rng, 0.08, 0.3),
            variant=int(rng.integers(2)),
        )
    else:
        wall = lay.material(PLAIN, wall_color, scale=0.6, variant=0)
    walls = [wall] * 4
    if rng.random() < 0.2:
        walls[int(rng.integers(4))] = lay.material(
            PLAIN, choose(rng, WALLS_BOLD + ALL_WALLS, 0.03), scale=0.6
        )
    floor_kinds = list(style.floors)
    kind = floor_kinds[int(rng.choice(len(floor_kinds), p=list(style.floors.values())))]
    floor = _floor_material(lay, kind)
    ceiling = lay.material(PLAIN, jittered(rng, (0.94, 0.94, 0.92), 0.015), scale=0.8)
    dado_height = 0.0
    mats = {"floor": floor, "ceiling": ceiling, "dado": wall}
    if rng.random() < style.wall_tiles:
        tile = choose(rng, TILES_LIGHT + TILES_DARK[2:], 0.03)
        mats["dado"] = lay.material(
            TILES,
            tile,
            (0.85, 0.85, 0.83),
            tile,
            scale=uniform(rng, 0.1, 0.3),
            variant=int(rng.integers(2)),
            gloss=0.5,
        )
        dado_height = uniform(rng, 1.0, 1.5) if rng.random() < 0.6 else lay.height
    trim = choose(rng, [(0.95, 0.95, 0.94), (0.5, 0.35, 0.22), wall_color], 0.02)
    mats["trim"] = lay.material(PLAIN, trim, scale=0.3, gloss=0.2)
    baseboard = 0.0 if dado_height > 0 or rng.random() < 0.2 else uniform(rng, 0.05, 0.12)
    return mats, (walls[0], walls[1], walls[2], walls[3]), dado_height, baseboard


def _floor_material(lay: Layout, kind: str) -> int:
    rng = lay.rng
    if kind == "wood":
        base = choose(rng, WOODS)
        return lay.material(
            WOOD,
            base,
            darker(base, 0.72),
            scale=uniform(rng, 0.025, 0.05),
            variant=int(rng.integers(10, 22)),
            gloss=0.2,
        )
    if kind == "carpet":
        base = choose(rng, CARPETS)
        return lay.material(
            SPECKLE, base, jittered(rng, base, 0.1), scale=uniform(rng, 0.01, 0.03), variant=1
        )
    if kind == "checker":
        dark, light = choose(rng, TILES_DARK, 0.03), choose(rng, TILES_LIGHT, 0.03)
        return lay.material(TILES, light, (0.6, 0.6, 0.58), dark, scale=uniform(rng, 0.2, 0.4), gloss=0.4)
    tile = choose(rng, TILES_LIGHT + TILES_DARK, 0.04)
    return lay.material(
        TILES, tile, jittered(rng, (0.6, 0.6, 0.58), 0.05), tile, scale=uniform(rng, 0.25, 0.6), gloss=0.3
    )


def add_rug(lay: Layout) -> None:
    rng = lay.rng
    width, depth = uniform(rng, 1.2, min(3.0, lay.width - 0.6)), uniform(rng, 0.8, min(2.2, lay.depth - 0.6))
    if width < 1.0 or depth < 0.7:
        return
    x0, z0 = uniform(rng, 0.3, lay.width - width - 0.3), uniform(rng, 0.3, lay.depth - depth - 0.3)
    base = choose(rng, ALL_FABRICS + CARPETS)
    mat = lay.material(
        FABRIC,
        base,
        choose(rng, BRIGHT + ALL_FABRICS),
        scale=uniform(rng, 0.1, 0.3),
        variant=int(rng.integers(3)),
    )
    lay.add_box((x0, 0.0, z0), (x0 + width, 0.012, z0 + depth), FLOOR, mat, 3, lay.new_group())


def ceiling_lamp(lay: Layout) -> tuple[float, float, float]:
    """Add the lamp (class objects, emissive, casts no shadow) and return the light position."""
    rng = lay.rng
    x, z = lay.width * uniform(rng, 0.35, 0.65), lay.depth * uniform(rng, 0.35, 0.65)
    for surface in lay.surfaces:
        if surface.height > 0.6 and surface.height < 0.8 and rng.random() < 0.5:  # over a table
            x0, x1, z0, z1 = surface.rect
            x, z = (x0 + x1) / 2, (z0 + z1) / 2
            break
    size, drop = uniform(rng, 0.25, 0.5), uniform(rng, 0.06, 0.3)
    glow = lay.material(LAMP, jittered(rng, (1.0, 0.93, 0.8), 0.03))
    group = lay.new_group(occludes=False)
    lay.add_box(
        (x - size / 2, lay.height - drop, z - size / 2),
        (x + size / 2, lay.height, z + size / 2),
        OBJECTS,
        glow,
        3,
        group,
    )
    return x, lay.height - drop - 0.06, z
