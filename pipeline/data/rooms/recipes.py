"""Per-scene-type furnishing recipes (``RECIPES``) and the top-up for sparsely furnished rooms."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from pipeline.data.rooms.constants import FLOOR, OBJECTS, SCENE_TYPES, TABLE, TV, WALL
from pipeline.data.rooms.furniture import (
    floor_items,
    floor_lamp,
    make_bed,
    make_bookshelf,
    make_cabinet,
    make_chair,
    make_counter,
    make_screen,
    make_sofa,
    make_table,
    place_small_objects,
)
from pipeline.data.rooms.layout import Layout, Piece, Surface, footprint_size
from pipeline.data.rooms.materials import (
    BRIGHT,
    FABRIC_COOL,
    FABRIC_WARM,
    METALS,
    PAINTED,
    PLAIN,
    SCREEN,
    TILES,
    TILES_DARK,
    TILES_LIGHT,
    choose,
    jittered,
    uniform,
)
from pipeline.data.rooms.wall_items import add_flat_on_wall, add_picture, wall_shelf


def _bedroom(lay: Layout) -> None:
    rng = lay.rng
    if rng.random() < 0.95:
        bed = make_bed(lay)
        spot = lay.place_on_wall(bed, target=3.0)
        if spot is not None:
            _nightstands(lay, bed, *spot)
            if rng.random() < 0.6:
                add_picture(lay, walls=[spot[0]])
    if rng.random() < 0.7:
        wardrobe = make_cabinet(
            lay, uniform(rng, 0.9, 2.0), uniform(rng, 0.55, 0.65), uniform(rng, 1.8, 2.3), variant=0
        )
        lay.place_on_wall(wardrobe)
    if rng.random() < 0.6:
        dresser = make_cabinet(
            lay, uniform(rng, 0.8, 1.5), uniform(rng, 0.4, 0.5), uniform(rng, 0.7, 1.0), variant=1
        )
        if lay.place_on_wall(dresser) and rng.random() < 0.2:
            _tv_on(lay, lay.surfaces[-1], 0.5, 0.8)
    if rng.random() < 0.3:
        _desk_with_chair(lay)
    if rng.random() < 0.3:
        lay.place_on_wall(make_chair(lay) if rng.random() < 0.6 else make_sofa(lay, 1), target=0.5)
    if rng.random() < 0.2:
        lay.place_on_wall(
            make_bookshelf(lay, uniform(rng, 0.6, 1.0), uniform(rng, 0.28, 0.36), uniform(rng, 0.8, 1.9))
        )
    if rng.random() < 0.2:
        wall_shelf(lay, books_p=0.6)
    if rng.random() < 0.25:
        floor_lamp(lay)
    place_small_objects(lay, int(rng.integers(2, 8)))
    floor_items(lay, int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(0, 3))):
        add_picture(lay)


def _nightstands(lay: Layout, bed: Piece, wall: int, along: float) -> None:
    rng = lay.rng
    width, depth, height = uniform(rng, 0.4, 0.55), uniform(rng, 0.35, 0.45), uniform(rng, 0.45, 0.6)
    mat = lay.cabinet(variant=1, door=0.18)
    for side in (-1, 1):
        if rng.random() < 0.8:
            stand = make_cabinet(lay, width, depth, height, variant=1, body=mat)
            cx, cz = lay.wall_point(
                wall, along + side * (bed.width / 2 + width / 2 + 0.04), depth / 2 + 0.005
            )
            if lay.try_add(stand, wall, cx, cz) and rng.random() < 0.6:
                place_small_objects(lay, 1, [lay.surfaces[-1]], max_height=0.5)


def _tv_on(lay: Layout, surface: Surface, low: float, high: float) -> None:
    x0, x1, z0, z1 = surface.rect
    along = max(x1 - x0, z1 - z0)
    width = min(along - 0.05, uniform(lay.rng, low, high))
    if width < 0.35:
        return
    piece = make_screen(lay, width, stand=True)
    rot = _facing_rot(lay, surface)
    fx, fz = footprint_size(piece, rot)
    if fx > x1 - x0 + 1e-6 or fz > z1 - z0 + 1e-6:
        return
    cx, cz = (x0 + x1) / 2, (z0 + z1) / 2
    if lay.put_on(surface, piece, rot, cx, cz):
        lay.targets.append((cx, surface.height + 0.3, cz, 1.0))


def _facing_rot(lay: Layout, surface: Surface) -> int:
    """Rotation facing away from the wall nearest to ``surface`` (towards the room)."""
    x0, x1, z0, z1 = surface.rect
    gaps = (z0, lay.width - x1, lay.depth - z1, x0)
    return int(np.argmin(gaps))


def _desk_with_chair(lay: Layout, monitor_p: float = 0.3) -> None:
    rng = lay.rng
    desk = make_table(lay, uniform(rng, 1.0, 1.7), uniform(rng, 0.6, 0.75), uniform(rng, 0.72, 0.76))
    if rng.random() < 0.4:
        drawers = lay.cabinet(variant=1, door=0.2)
        desk.add(desk.width - 0.45, 0, 0.02, desk.width - 0.05, 0.68, desk.depth - 0.04, TABLE, drawers)
    spot = lay.place_on_wall(desk, target=2.0)
    if spot is None:
        return
    wall, along = spot
    surface = lay.surfaces[-1]
    if rng.random() < monitor_p:
        _tv_on(lay, surface, 0.45, 0.65)
    place_small_objects(lay, int(rng.integers(1, 4)), [surface], max_height=0.35)
    if rng.random() < 0.9:
        chair = make_chair(lay, office=rng.random() < 0.6)
        dist = desk.depth + uniform(rng, -0.15, 0.3)
        cx, cz = lay.wall_point(
            wall, along + uniform(rng, -0.2, 0.2), max(desk.depth + 0.03, dist) + chair.depth / 2
        )
        lay.try_add(chair, (wall + 2) % 4, cx, cz, margin=0.02)


def _kitchen(lay: Layout) -> None:
    rng = lay.rng
    walls = [int(w) for w in rng.permutation(4)[: int(rng.choice([1, 2, 2, 3]))]]
    for wall in walls:
        length = min(lay.wall_length(wall) - 0.1, uniform(rng, 1.4, 4.0))
        spot = None
        for shrink in (1.0, 0.7, 0.45):  # shorter runs fit between doors and windows
            spot = lay.place_on_wall(make_counter(lay, length * shrink), walls=[wall], tries=6, target=2.0)
            if spot is not None:
                length *= shrink
                break
        if spot is None:
            continue
        if rng.random() < 0.65:
            upper = make_cabinet(lay, length, 0.35, uniform(rng, 0.6, 0.8), variant=0)
            upper.surfaces.clear()
            upper.boxes = upper.boxes[1:]
            lay.mount_on_wall(upper, uniform(rng, 1.45, 1.55), walls=[wall], along=spot[1], tries=1)
        if rng.random() < 0.6:
            tiles = lay.material(
                TILES,
                choose(rng, TILES_LIGHT + TILES_DARK[:2]),
                (0.8, 0.8, 0.78),
                choose(rng, TILES_LIGHT),
                scale=uniform(rng, 0.08, 0.2),
                variant=1,
                gloss=0.4,
            )
            add_flat_on_wall(lay, WALL, tiles, length, 0.5, 0.915, depth=0.006, walls=[wall], along=spot[1])
    counters = list(lay.surfaces)
    for surface in counters:
        if rng.random() < 0.6:  # sink or hob, flush on the counter
            _place_fixture(lay, surface)
    if rng.random() < 0.7:
        fridge = make_cabinet(
            lay,
            uniform(rng, 0.6, 0.8),
            uniform(rng, 0.62, 0.7),
            uniform(rng, 1.7, 1.95),
            variant=3,
            body=lay.cabinet(choose(rng, METALS[:1] + PAINTED[:1]), variant=3, gloss=0.5),
        )
        fridge.surfaces.clear()
        lay.place_on_wall(fridge, target=0.5)
    if rng.random() < 0.6:
        _table_with_chairs(lay, (0.8, 1.4), (0.7, 0.9), (1, 4))
    if rng.random() < 0.25:
        lay.place_on_wall(
            make_bookshelf(lay, uniform(rng, 0.6, 1.0), 0.3, uniform(rng, 0.8, 1.8), books_p=0.25)
        )
    if rng.random() < 0.2:
        wall_shelf(lay, books_p=0.2)
    place_small_objects(lay, int(rng.integers(3, 10)), max_height=0.4)
    floor_items(lay, int(rng.integers(0, 2)))
    if rng.random() < 0.2:
        add_picture(lay)
    if rng.random() < 0.1:
        add_flat_on_wall(
            lay,
            TV,
            lay.material(SCREEN, (0.05, 0.05, 0.06), (0.2, 0.2, 0.2), (0.3, 0.5, 0.8), scale=0.02, gloss=0.6),
            0.6,
            0.36,
            1.5,
            depth=0.05,
        )


def _place_fixture(lay: Layout, surface: Surface) -> None:
    rng = lay.rng
    x0, x1, z0, z1 = surface.rect
    sink = rng.random() < 0.5
    color = choose(rng, METALS) if sink else (0.08, 0.08, 0.09)
    mat = lay.material(PLAIN, color, scale=0.2, gloss=0.7)
    piece = Piece(uniform(rng, 0.5, 0.7), 0.45)
    piece.add(0, 0, 0, piece.width, 0.015, 0.45, OBJECTS, mat)
    if sink:
        piece.add(piece.width / 2 - 0.02, 0.0, 0.0, piece.width / 2 + 0.02, 0.25, 0.05, OBJECTS, mat)
    rot = _facing_rot(lay, surface)
    fx, fz = footprint_size(piece, rot)
    if fx > x1 - x0 or fz > z1 - z0:
        return
    cx, cz = uniform(rng, x0 + fx / 2, x1 - fx / 2), uniform(rng, z0 + fz / 2, z1 - fz / 2)
    lay.put_on(surface, piece, rot, cx, cz)


def _table_with_chairs(
    lay: Layout,
    length: tuple[float, float],
    width: tuple[float, float],
    chairs: tuple[int, int],
    height: float = 0.75,
) -> None:
    rng = lay.rng
    table = make_table(lay, uniform(rng, *length), uniform(rng, *width), height + uniform(rng, -0.03, 0.02))
    spot = lay.place_free(table, margin=0.65, target=3.0)
    if spot is None:
        spot = lay.place_free(table, margin=0.2, target=3.0)
        if spot is None:
            return
    rot, cx, cz = spot
    surface = lay.surfaces[-1]
    fx, fz = footprint_size(table, rot)
    chair_mat = lay.wood(painted_p=0.4)
    seats = [(side, offset) for side in range(4) for offset in _seat_offsets(fx if side % 2 == 0 else fz)]
    rng.shuffle(seats)
    wanted = int(rng.integers(chairs[0], chairs[1] + 1))
    placed = 0
    for side, offset in seats:
        if placed >= wanted:
            break
        chair = make_chair(lay, chair_mat)
        pull = uniform(rng, 0.03, 0.3)
        half_x, half_z = fx / 2 + pull + chair.depth / 2, fz / 2 + pull + chair.depth / 2
        # side 0: chair at -z facing +z (rot 0); 1: at +x facing -x; 2: at +z facing -z; 3: at -x facing +x
        pos = (
            (cx + offset, cz - half_z),
            (cx + half_x, cz + offset),
            (cx + offset, cz + half_z),
            (cx - half_x, cz + offset),
        )[side]
        if lay.try_add(chair, side, pos[0], pos[1], margin=0.03):
            placed += 1
    place_small_objects(lay, int(rng.integers(0, 4)), [surface], max_height=0.35)


def _seat_offsets(side_length: float) -> list[float]:
    count = max(1, int(side_length / 0.6))
    step = side_length / count
    return [-side_length / 2 + step * (i + 0.5) for i in range(count)]


def _living_room(lay: Layout) -> None:
    rng = lay.rng
    sofa_spot = None
    if rng.random() < 0.9:
        sofa = make_sofa(lay, int(rng.integers(2, 4)))
        sofa_spot = lay.place_on_wall(sofa, target=3.0)
        if sofa_spot is not None and rng.random() < 0.8:
            wall, along = sofa_spot
            table = make_table(lay, uniform(rng, 0.8, 1.3), uniform(rng, 0.5, 0.7), uniform(rng, 0.38, 0.46))
            cx, cz = lay.wall_point(wall, along, sofa.depth + uniform(rng, 0.35, 0.55) + table.depth / 2)
            if lay.try_add(table, wall, cx, cz, target=1.0):
                place_small_objects(lay, int(rng.integers(0, 3)), [lay.surfaces[-1]], max_height=0.3)
        if sofa_spot is not None and rng.random() < 0.4:
            add_picture(lay, walls=[sofa_spot[0]])
    if rng.random() < 0.4:
        lay.place_on_wall(make_sofa(lay, 1), target=1.0)
    if rng.random() < 0.75:
        opposite = [(sofa_spot[0] + 2) % 4] if sofa_spot is not None and rng.random() < 0.7 else None
        stand = make_cabinet(
            lay,
            uniform(rng, 1.0, 1.8),
            uniform(rng, 0.4, 0.5),
            uniform(rng, 0.45, 0.6),
            variant=int(rng.integers(2)),
        )
        if lay.place_on_wall(stand, walls=opposite, target=2.0) and rng.random() < 0.9:
            _tv_on(lay, lay.surfaces[-1], 0.8, 1.4)
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        lay.place_on_wall(
            make_bookshelf(lay, uniform(rng, 0.7, 1.4), uniform(rng, 0.28, 0.4), uniform(rng, 1.2, 2.2))
        )
    if rng.random() < 0.2:
        lay.place_on_wall(make_chair(lay), target=0.5)
    if rng.random() < 0.4:
        side = make_table(lay, uniform(rng, 0.4, 0.6), uniform(rng, 0.4, 0.6), uniform(rng, 0.5, 0.65))
        lay.place_on_wall(side, target=0.3)
    if rng.random() < 0.3:
        wall_shelf(lay, books_p=0.6)
    if rng.random() < 0.45:
        floor_lamp(lay)
    place_small_objects(lay, int(rng.integers(2, 7)))
    floor_items(lay, int(rng.integers(0, 4)))
    for _ in range(int(rng.integers(0, 4))):
        add_picture(lay)


def _office(lay: Layout) -> None:
    rng = lay.rng
    for _ in range(int(rng.choice([1, 1, 2, 3]))):
        _desk_with_chair(lay, monitor_p=0.8)
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        lay.place_on_wall(
            make_bookshelf(
                lay, uniform(rng, 0.7, 1.5), uniform(rng, 0.28, 0.4), uniform(rng, 1.0, 2.2), books_p=0.85
            )
        )
    if rng.random() < 0.6:
        for _ in range(int(rng.integers(1, 3))):
            lay.place_on_wall(
                make_cabinet(
                    lay, uniform(rng, 0.4, 0.9), uniform(rng, 0.45, 0.6), uniform(rng, 0.7, 1.3), variant=1
                )
            )
    if rng.random() < 0.2:
        _table_with_chairs(lay, (1.2, 2.0), (0.8, 1.0), (2, 5))
    if rng.random() < 0.1:
        lay.place_on_wall(make_sofa(lay, 2), target=1.0)
    if rng.random() < 0.35:
        wall_shelf(lay, books_p=0.85)
    place_small_objects(lay, int(rng.integers(2, 7)), max_height=0.35)
    floor_items(lay, int(rng.integers(0, 3)))
    for _ in range(int(rng.random() < 0.4) + int(rng.random() < 0.15)):
        add_picture(lay)
    if rng.random() < 0.15:
        add_flat_on_wall(
            lay,
            TV,
            lay.material(SCREEN, (0.05, 0.05, 0.06), (0.2, 0.2, 0.2), (0.9, 0.9, 0.9), scale=0.02, variant=1),
            1.2,
            0.75,
            1.1,
            depth=0.05,
        )


def _bathroom(lay: Layout) -> None:
    rng = lay.rng
    white = lay.material(
        PLAIN, choose(rng, [(0.95, 0.95, 0.94), (0.9, 0.92, 0.93)], 0.02), scale=0.3, gloss=0.7
    )
    if rng.random() < 0.9:
        _vanity(lay, white)
    if rng.random() < 0.85:
        toilet = Piece(0.4, 0.7)
        toilet.add(0.06, 0, 0.18, 0.34, 0.4, 0.62, OBJECTS, white)
        toilet.add(0.02, 0.4, 0.15, 0.38, 0.44, 0.69, OBJECTS, white)
        toilet.add(0.0, 0.3, 0.0, 0.4, 0.8, 0.2, OBJECTS, white)
        lay.place_on_wall(toilet, target=1.5)
    if rng.random() < 0.5:
        lay.place_on_wall(_bathtub(lay, white), target=1.5)
    if rng.random() < 0.3:
        lay.place_on_wall(
            make_cabinet(
                lay, uniform(rng, 0.4, 0.7), uniform(rng, 0.3, 0.4), uniform(rng, 1.2, 1.9), variant=0
            )
        )
    if rng.random() < 0.2:
        lay.place_on_wall(
            make_bookshelf(lay, uniform(rng, 0.4, 0.7), 0.25, uniform(rng, 0.8, 1.6), books_p=0.05)
        )
    for _ in range(int(rng.integers(1, 4))):
        towel = lay.fabric(FABRIC_WARM + FABRIC_COOL + BRIGHT[:3])
        add_flat_on_wall(
            lay,
            OBJECTS,
            towel,
            uniform(rng, 0.3, 0.5),
            uniform(rng, 0.4, 0.7),
            uniform(rng, 0.8, 1.1),
            depth=0.05,
        )
    if rng.random() < 0.05:
        lay.place_on_wall(make_chair(lay), tries=5)
    if rng.random() < 0.4:
        wall_shelf(lay, books_p=0.0)
    if rng.random() < 0.5:
        mat = lay.fabric(FABRIC_WARM + FABRIC_COOL + BRIGHT[:3])
        rug = Piece(uniform(rng, 0.5, 0.8), uniform(rng, 0.4, 0.55))
        rug.add(0, 0, 0, rug.width, 0.012, rug.depth, FLOOR, mat)
        lay.place_free(rug, tries=8, target=0.0, margin=0.1)
    floor_items(lay, int(rng.integers(0, 3)))
    place_small_objects(lay, int(rng.integers(2, 7)), max_height=0.3)
    if rng.random() < 0.2:
        add_picture(lay)


def _vanity(lay: Layout, white: int) -> None:
    """Washstand (furniture) with a basin (objects), toiletries and a mirror (objects) above it."""
    rng = lay.rng
    vanity = make_cabinet(
        lay,
        uniform(rng, 0.6, 1.2),
        uniform(rng, 0.45, 0.52),
        uniform(rng, 0.78, 0.86),
        variant=int(rng.integers(3)),
    )
    top, mid, basin = vanity.height, vanity.width / 2, 0.4
    vanity.surfaces.clear()
    vanity.surface(0.03, mid - basin / 2 - 0.01, 0.05, vanity.depth - 0.05, top)
    vanity.surface(mid + basin / 2 + 0.01, vanity.width - 0.03, 0.05, vanity.depth - 0.05, top)
    vanity.add(mid - basin / 2, top, 0.08, mid + basin / 2, top + 0.1, 0.42, OBJECTS, white)
    vanity.add(mid - 0.02, top, 0.02, mid + 0.02, top + 0.22, 0.06, OBJECTS, white)
    spot = lay.place_on_wall(vanity, target=2.0)
    if spot is None:
        return
    wall, along = spot
    mirror = lay.material(PLAIN, jittered(rng, (0.7, 0.78, 0.82), 0.03), scale=0.5, variant=2, gloss=0.9)
    height = uniform(rng, 0.6, 0.9)
    add_flat_on_wall(
        lay, OBJECTS, mirror, vanity.width * 0.85, height, 1.15, depth=0.02, walls=[wall], along=along
    )


def _bathtub(lay: Layout, white: int) -> Piece:
    rng = lay.rng
    tub = Piece(uniform(rng, 1.5, 1.75), uniform(rng, 0.7, 0.78))
    rim, height = 0.07, uniform(rng, 0.5, 0.58)
    w, d = tub.width, tub.depth
    tub.add(0, 0, 0, w, height, rim, OBJECTS, white)
    tub.add(0, 0, d - rim, w, height, d, OBJECTS, white)
    tub.add(0, 0, rim, rim, height, d - rim, OBJECTS, white)
    tub.add(w - rim, 0, rim, w, height, d - rim, OBJECTS, white)
    tub.add(rim, 0, rim, w - rim, 0.15, d - rim, OBJECTS, white)
    return tub


def _dining_room(lay: Layout) -> None:
    rng = lay.rng
    if rng.random() < 0.95:
        _table_with_chairs(lay, (1.3, 2.3), (0.8, 1.05), (3, 8))
    if rng.random() < 0.7:
        sideboard = make_cabinet(
            lay,
            uniform(rng, 1.0, 2.0),
            uniform(rng, 0.42, 0.5),
            uniform(rng, 0.75, 0.95),
            variant=int(rng.integers(3)),
        )
        lay.place_on_wall(sideboard, target=1.0)
    if rng.random() < 0.25:
        lay.place_on_wall(
            make_bookshelf(lay, uniform(rng, 0.7, 1.2), 0.35, uniform(rng, 1.2, 2.0), books_p=0.6)
        )
    if rng.random() < 0.3:
        lay.place_on_wall(make_cabinet(lay, uniform(rng, 0.8, 1.4), 0.45, uniform(rng, 1.6, 2.0), variant=0))
    if rng.random() < 0.1:
        lay.place_on_wall(make_sofa(lay, 2), target=0.5)
    if rng.random() < 0.1:
        add_flat_on_wall(
            lay,
            TV,
            lay.material(SCREEN, (0.05, 0.05, 0.06), (0.2, 0.2, 0.2), (0.3, 0.5, 0.8), scale=0.02, gloss=0.6),
            1.0,
            0.58,
            1.1,
            depth=0.05,
        )
    if rng.random() < 0.2:
        floor_lamp(lay)
    place_small_objects(lay, int(rng.integers(2, 7)), max_height=0.4)
    floor_items(lay, int(rng.integers(0, 3)))
    for _ in range(int(rng.integers(1, 4))):
        add_picture(lay)


def furnish_sparse_room(lay: Layout, minimum: int = 3) -> None:
    """Top up a room whose recipe placed fewer than ``minimum`` floor pieces with storage or seating."""
    rng = lay.rng
    for _ in range(8):
        if sum(top > 0 for _, top in lay.footprints) >= minimum:
            return
        choice = rng.random()
        if choice < 0.5:
            piece = make_cabinet(
                lay,
                uniform(rng, 0.5, 1.4),
                uniform(rng, 0.35, 0.55),
                uniform(rng, 0.5, 1.9),
                int(rng.integers(3)),
            )
        elif choice < 0.75:
            books = 0.1 if SCENE_TYPES[lay.scene] in ("bathroom", "kitchen") else 0.7
            piece = make_bookshelf(
                lay, uniform(rng, 0.5, 1.1), uniform(rng, 0.28, 0.38), uniform(rng, 0.8, 2.0), books_p=books
            )
        else:
            piece = make_chair(lay)
        if lay.place_on_wall(piece, tries=10, target=0.5) and piece.surfaces:
            place_small_objects(lay, int(rng.integers(0, 3)), [lay.surfaces[-1]])


RECIPES: dict[str, Callable[[Layout], None]] = {
    "bedroom": _bedroom,
    "kitchen": _kitchen,
    "living_room": _living_room,
    "office": _office,
    "bathroom": _bathroom,
    "dining_room": _dining_room,
}
