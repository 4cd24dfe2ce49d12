"""Wall items: windows (with curtains), doors, wall shelves, pictures, mirrors and towels."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.data.rooms.constants import FURNITURE, PICTURE, WALL, WINDOW
from pipeline.data.rooms.furniture import fill_shelf
from pipeline.data.rooms.layout import Layout, Piece
from pipeline.data.rooms.materials import (
    ALL_FABRICS,
    BOOK_SPINES,
    BRIGHT,
    PAINTED,
    PAINTING,
    WALLS_COOL,
    WINDOW_VIEW,
    WOODS,
    choose,
    uniform,
)


def add_window(lay: Layout, bottom_range: tuple[float, float], width_range: tuple[float, float]) -> None:
    rng = lay.rng
    bottom = uniform(rng, *bottom_range)
    top = min(lay.height - 0.2, bottom + uniform(rng, 0.9, 1.5))
    width = uniform(rng, *width_range)
    frame = choose(rng, [(0.95, 0.95, 0.94), (0.55, 0.38, 0.25), (0.25, 0.25, 0.26)], 0.03)
    sky = choose(rng, [(0.75, 0.86, 0.98), (0.88, 0.9, 0.92), (0.95, 0.88, 0.75)], 0.04)
    outdoor = choose(rng, [(0.35, 0.55, 0.30), (0.60, 0.58, 0.55), (0.45, 0.50, 0.40)], 0.05)
    mat = lay.material(
        WINDOW_VIEW, sky, frame, outdoor, scale=uniform(rng, 0.04, 0.07), variant=int(rng.integers(3))
    )
    window = Piece(width, 0.17)
    window.add(0, 0, 0, width, top - bottom, 0.17, WINDOW, mat)
    curtains = rng.random() < 0.45
    if not curtains:
        lay.mount_on_wall(window, bottom, inset=0.15)
        return
    # window and curtains as one piece: curtains hang from above the window to the floor
    drape = uniform(rng, 0.25, 0.45)
    total = Piece(width + 2 * drape, 0.25)
    length = top + 0.1 if rng.random() < 0.6 else top - bottom + 0.25
    cloth = lay.fabric()
    total.add(drape, bottom, 0, drape + width, top, 0.17, WINDOW, mat)
    for u0 in (0.0, width + drape):
        total.add(u0, top + 0.1 - length, 0.17, u0 + drape, top + 0.1, 0.23, WINDOW, cloth)
    low = top + 0.1 - length
    total.boxes = [(u0, v0 - low, w0, u1, v1 - low, w1, c, m) for u0, v0, w0, u1, v1, w1, c, m in total.boxes]
    lay.mount_on_wall(total, low, inset=0.15)


def add_door(lay: Layout, trim: int) -> None:
    """A door leaf in a casing (class wall, as in the NYUv2 13-class mapping) with free floor before it."""
    rng = lay.rng
    width, height = uniform(rng, 0.8, 0.95), min(lay.height - 0.12, uniform(rng, 2.0, 2.15))
    leaf = lay.cabinet(choose(rng, PAINTED[:1] + WOODS + PAINTED[2:3], 0.03), variant=4, door=width)
    piece = Piece(width + 0.14, 0.035)
    piece.add(0, 0, 0, width + 0.14, height + 0.07, 0.015, WALL, trim)
    piece.add(0.07, 0, 0, 0.07 + width, height, 0.035, WALL, leaf)
    spot = lay.mount_on_wall(piece, 0.0, tries=10)
    if spot is not None:
        wall, centre = spot
        lay.keepouts.append(lay.wall_rect(wall, centre - width / 2, centre + width / 2, 0.8))


def wall_shelf(lay: Layout, books_p: float) -> None:
    rng = lay.rng
    width, depth = uniform(rng, 0.6, 1.2), uniform(rng, 0.18, 0.26)
    piece = Piece(width, depth)
    piece.add(0, 0, 0, width, 0.025, depth, FURNITURE, lay.wood(painted_p=0.5))
    books = lay.material(
        BOOK_SPINES, (0.9, 0.87, 0.78), scale=uniform(rng, 0.025, 0.045), variant=int(rng.integers(2))
    )
    fill_shelf(lay, piece, 0.02, width - 0.02, 0.025, uniform(rng, 0.2, 0.3), depth, books, books_p)
    lay.mount_on_wall(piece, uniform(rng, 1.1, 1.6), tries=10)


def add_picture(lay: Layout, walls: Sequence[int] | None = None) -> None:
    rng = lay.rng
    width = uniform(rng, 0.3, 1.2)
    height = min(1.0, width * uniform(rng, 0.6, 1.4))
    frame = choose(rng, [(0.1, 0.1, 0.1), (0.9, 0.9, 0.88), (0.55, 0.38, 0.22), (0.75, 0.6, 0.3)], 0.03)
    mat = lay.material(
        PAINTING,
        choose(rng, BRIGHT + ALL_FABRICS, 0.1),
        frame,
        choose(rng, BRIGHT + WALLS_COOL, 0.1),
        scale=uniform(rng, 0.02, 0.06),
        variant=int(rng.integers(3)),
    )
    piece = Piece(width, uniform(rng, 0.02, 0.04))
    piece.add(0, 0, 0, width, height, piece.depth, PICTURE, mat)
    centre = uniform(rng, 1.35, 1.75)
    lay.mount_on_wall(piece, min(centre - height / 2, lay.height - 0.15 - height), walls=walls, tries=15)


def add_flat_on_wall(
    lay: Layout,
    cls: int,
    mat: int,
    width: float,
    height: float,
    bottom: float,
    depth: float = 0.03,
    walls: Sequence[int] | None = None,
    along: float | None = None,
) -> None:
    piece = Piece(width, depth)
    piece.add(0, 0, 0, width, height, depth, cls, mat)
    lay.mount_on_wall(piece, bottom, walls=walls, along=along, tries=15 if along is None else 1)
