"""Piece builders: beds, cabinets, tables, chairs, sofas, shelves, screens, lamps and small objects."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.data.rooms.constants import BED, BOOKS, CHAIR, FURNITURE, OBJECTS, SOFA, TABLE, TV
from pipeline.data.rooms.layout import Layout, Piece, Surface, footprint_size
from pipeline.data.rooms.materials import (
    BOOK_SPINES,
    BRIGHT,
    FABRIC_COOL,
    FABRIC_WARM,
    METALS,
    PAINTED,
    PLAIN,
    SCREEN,
    SPECKLE,
    STONES,
    WOODS,
    choose,
    darker,
    jittered,
    uniform,
)


def make_bed(lay: Layout) -> Piece:
    rng = lay.rng
    width = float(rng.choice([0.95, 1.45, 1.65, 1.85])) + uniform(rng, -0.05, 0.05)
    length = uniform(rng, 1.95, 2.15)
    frame_h, mattress_h = uniform(rng, 0.22, 0.35), uniform(rng, 0.18, 0.26)
    frame = lay.wood(painted_p=0.3)
    piece = Piece(width, length)
    piece.add(0, 0, 0, width, frame_h, length, BED, frame)
    top = frame_h + mattress_h
    piece.add(
        0.03,
        frame_h,
        0.05,
        width - 0.03,
        top,
        length - 0.03,
        BED,
        lay.fabric(FABRIC_WARM[4:] + FABRIC_WARM[:1]),
    )
    piece.add(
        0,
        0,
        0,
        width,
        top + uniform(rng, 0.35, 0.75),
        0.07,
        BED,
        frame if rng.random() < 0.6 else lay.fabric(),
    )
    piece.add(
        -0.01,
        frame_h + 0.06,
        length * uniform(rng, 0.35, 0.5),
        width + 0.01,
        top + 0.05,
        length + 0.01,
        BED,
        lay.fabric(),
    )
    pillow = lay.fabric(FABRIC_WARM[4:] + FABRIC_COOL[3:4] + FABRIC_WARM[:1])
    count = 1 if width < 1.2 else 2
    pw = (width - 0.16) / count - 0.04
    for i in range(count):
        u0 = 0.08 + i * (pw + 0.08)
        piece.add(
            u0,
            top,
            0.1,
            u0 + pw,
            top + uniform(rng, 0.1, 0.15),
            0.1 + uniform(rng, 0.32, 0.45),
            OBJECTS,
            pillow,
        )
    return piece


def make_cabinet(
    lay: Layout,
    width: float,
    depth: float,
    height: float,
    variant: int = 0,
    body: int | None = None,
    top_mat: int | None = None,
) -> Piece:
    """A cabinet / dresser / wardrobe / nightstand (class furniture) with a top board and plinth."""
    rng = lay.rng
    door = 0.45 if variant != 1 else uniform(rng, 0.16, 0.25)
    body = lay.cabinet(variant=variant, door=door) if body is None else body
    top_mat = top_mat if top_mat is not None else (lay.wood(painted_p=0.4) if rng.random() < 0.5 else body)
    plinth = uniform(rng, 0.03, 0.1)
    piece = Piece(width, depth)
    piece.add(
        0.03,
        0,
        0.02,
        width - 0.03,
        plinth,
        depth - 0.04,
        FURNITURE,
        lay.material(PLAIN, choose(rng, PAINTED[1:3]), scale=0.3),
    )
    piece.add(0.01, plinth, 0, width - 0.01, height - 0.025, depth - 0.01, FURNITURE, body)
    piece.add(0, height - 0.025, 0, width, height, depth, FURNITURE, top_mat)
    piece.surface(0.04, width - 0.04, 0.04, depth - 0.04, height)
    return piece


def make_table(lay: Layout, width: float, depth: float, height: float, mat: int | None = None) -> Piece:
    rng = lay.rng
    mat = lay.wood(painted_p=0.25, gloss=0.2) if mat is None else mat
    legs = mat if rng.random() < 0.7 else lay.material(PLAIN, choose(rng, METALS), scale=0.3, gloss=0.4)
    thick, leg, inset = uniform(rng, 0.025, 0.05), uniform(rng, 0.035, 0.07), uniform(rng, 0.02, 0.08)
    piece = Piece(width, depth)
    piece.add(0, height - thick, 0, width, height, depth, TABLE, mat)
    for u in (inset, width - inset - leg):
        for w in (inset, depth - inset - leg):
            piece.add(u, 0, w, u + leg, height - thick, w + leg, TABLE, legs)
    if rng.random() < 0.3 and height < 0.55:  # coffee table with a lower shelf
        piece.add(inset, 0.08, inset, width - inset, 0.1, depth - inset, TABLE, mat)
    piece.surface(0.03, width - 0.03, 0.03, depth - 0.03, height)
    return piece


def make_chair(lay: Layout, mat: int | None = None, office: bool = False) -> Piece:
    rng = lay.rng
    width, depth = uniform(rng, 0.42, 0.5), uniform(rng, 0.42, 0.5)
    seat = uniform(rng, 0.43, 0.48)
    piece = Piece(width, depth)
    if office:
        dark = lay.material(PLAIN, choose(rng, METALS[1:]), scale=0.3, gloss=0.3)
        cushion = lay.fabric(FABRIC_COOL)
        mid_u, mid_w = width / 2, depth / 2
        piece.add(0, 0.03, mid_w - 0.03, width, 0.08, mid_w + 0.03, CHAIR, dark)
        piece.add(mid_u - 0.03, 0.03, 0, mid_u + 0.03, 0.08, depth, CHAIR, dark)
        piece.add(mid_u - 0.025, 0.08, mid_w - 0.025, mid_u + 0.025, seat - 0.07, mid_w + 0.025, CHAIR, dark)
        piece.add(0, seat - 0.07, 0.02, width, seat, depth, CHAIR, cushion)
        piece.add(mid_u - 0.02, seat - 0.07, 0.0, mid_u + 0.02, seat + 0.12, 0.03, CHAIR, dark)
        piece.add(0.02, seat + 0.08, 0.0, width - 0.02, seat + uniform(rng, 0.45, 0.6), 0.07, CHAIR, cushion)
        return piece
    mat = lay.wood(painted_p=0.35) if mat is None else mat
    leg = uniform(rng, 0.03, 0.045)
    for u in (0, width - leg):
        for w in (0, depth - leg):
            piece.add(u, 0, w, u + leg, seat - 0.04, w + leg, CHAIR, mat)
    seat_mat = mat if rng.random() < 0.6 else lay.fabric()
    piece.add(0, seat - 0.04, 0, width, seat, depth, CHAIR, seat_mat)
    back = uniform(rng, 0.35, 0.5)
    if rng.random() < 0.5:
        piece.add(0, seat, 0, width, seat + back, 0.035, CHAIR, mat)
    else:
        piece.add(0, seat, 0, leg, seat + back, leg, CHAIR, mat)
        piece.add(width - leg, seat, 0, width, seat + back, leg, CHAIR, mat)
        piece.add(0, seat + back - 0.12, 0, width, seat + back, 0.03, CHAIR, mat)
    return piece


def make_sofa(lay: Layout, seats: int, mat: int | None = None) -> Piece:
    rng = lay.rng
    arm = uniform(rng, 0.12, 0.22)
    width = seats * uniform(rng, 0.55, 0.7) + 2 * arm
    depth = uniform(rng, 0.8, 0.95)
    mat = lay.fabric(lay.colors("fabric")) if mat is None else mat
    cushion = mat if rng.random() < 0.6 else lay.fabric()
    base, seat_top, back_top, arm_top = (
        uniform(rng, 0.08, 0.15),
        uniform(rng, 0.4, 0.46),
        uniform(rng, 0.75, 0.9),
        uniform(rng, 0.55, 0.68),
    )
    piece = Piece(width, depth)
    legs = lay.material(PLAIN, choose(rng, WOODS[2:] + METALS[2:]), scale=0.3)
    piece.add(arm, 0.0, 0.05, width - arm, base, depth - 0.05, SOFA, legs)
    piece.add(0, base, 0, width, seat_top - 0.1, depth, SOFA, mat)
    piece.add(arm, base, 0, width - arm, back_top, uniform(rng, 0.15, 0.22), SOFA, mat)
    piece.add(0, base, 0, arm, arm_top, depth, SOFA, mat)
    piece.add(width - arm, base, 0, width, arm_top, depth, SOFA, mat)
    inner = (width - 2 * arm) / seats
    for i in range(seats):
        u0 = arm + i * inner + 0.005
        piece.add(u0, seat_top - 0.1, 0.2, u0 + inner - 0.01, seat_top, depth - 0.01, SOFA, cushion)
    if rng.random() < 0.5:
        pillow = lay.fabric(BRIGHT[:4] + FABRIC_WARM)
        for u0 in (arm + 0.04, width - arm - 0.44):
            piece.add(u0, seat_top, 0.18, u0 + 0.4, seat_top + 0.36, 0.3, OBJECTS, pillow)
    return piece


def make_bookshelf(lay: Layout, width: float, depth: float, height: float, books_p: float = 0.8) -> Piece:
    """A shelf unit (furniture) whose levels hold runs of books (class books) and objects."""
    rng = lay.rng
    frame = lay.wood(painted_p=0.4)
    thick = uniform(rng, 0.02, 0.03)
    piece = Piece(width, depth)
    piece.add(0, 0, 0, thick, height, depth, FURNITURE, frame)
    piece.add(width - thick, 0, 0, width, height, depth, FURNITURE, frame)
    piece.add(thick, height - thick, 0, width - thick, height, depth, FURNITURE, frame)
    piece.add(thick, 0, 0, width - thick, 0.06, depth, FURNITURE, frame)
    piece.add(thick, 0.06, 0, width - thick, height - thick, 0.012, FURNITURE, frame)
    levels = max(1, round((height - 0.06) / uniform(rng, 0.3, 0.4)))
    gap = (height - 0.06 - thick) / levels
    books = lay.material(
        BOOK_SPINES, (0.9, 0.87, 0.78), scale=uniform(rng, 0.025, 0.045), variant=int(rng.integers(2))
    )
    for level in range(levels):
        floor = 0.06 + level * gap
        if level > 0:
            piece.add(thick, floor - thick, 0.012, width - thick, floor, depth, FURNITURE, frame)
        fill_shelf(
            lay, piece, thick + 0.01, width - thick - 0.01, floor, gap - thick - 0.02, depth, books, books_p
        )
    piece.surface(0.03, width - 0.03, 0.03, depth - 0.03, height)
    return piece


def fill_shelf(
    lay: Layout,
    piece: Piece,
    u0: float,
    u1: float,
    floor: float,
    room: float,
    depth: float,
    books: int,
    books_p: float,
) -> None:
    rng = lay.rng
    u = u0 + uniform(rng, 0.0, 0.08)
    while u < u1 - 0.06:
        run = min(uniform(rng, 0.1, 0.45), u1 - u)
        choice = rng.random()
        if choice < books_p:
            top = floor + room * uniform(rng, 0.65, 0.95)
            book_depth = depth * uniform(rng, 0.6, 0.9)
            piece.add(u, floor, depth - 0.015 - book_depth, u + run, top, depth - 0.015, BOOKS, books)
        elif choice < books_p + (1 - books_p) * 0.6:
            size = min(run, uniform(rng, 0.08, 0.2))
            top = floor + min(room, uniform(rng, 0.08, 0.25))
            piece.add(
                u,
                floor,
                depth * 0.3,
                u + size,
                top,
                depth * 0.3 + min(size, depth * 0.6),
                OBJECTS,
                lay.object_material(),
            )
        u += run + uniform(rng, 0.0, 0.1)


def make_counter(lay: Layout, length: float) -> Piece:
    rng = lay.rng
    body = lay.cabinet(variant=int(rng.choice([0, 2])), door=uniform(rng, 0.4, 0.6))
    top = lay.material(
        SPECKLE if rng.random() < 0.6 else PLAIN,
        choose(rng, STONES),
        choose(rng, STONES),
        scale=0.03,
        variant=1,
        gloss=0.5,
    )
    piece = Piece(length, 0.62)
    piece.add(
        0.0, 0, 0.0, length, 0.1, 0.52, FURNITURE, lay.material(PLAIN, choose(rng, PAINTED[1:3]), scale=0.3)
    )
    piece.add(0.0, 0.1, 0.0, length, 0.87, 0.58, FURNITURE, body)
    piece.add(0.0, 0.87, 0.0, length, 0.91, 0.62, FURNITURE, top)
    piece.surface(0.04, length - 0.04, 0.06, 0.56, 0.91)
    return piece


def make_screen(lay: Layout, width: float, stand: bool) -> Piece:
    """A TV or monitor (class tv), on a stand or flat for wall mounting."""
    rng = lay.rng
    height = width * uniform(rng, 0.55, 0.62)
    on = rng.random() < 0.35
    mat = lay.material(
        SCREEN,
        (0.05, 0.05, 0.06),
        choose(rng, METALS[1:]),
        choose(rng, BRIGHT),
        scale=0.02,
        variant=int(on),
        gloss=0.6,
    )
    plastic = lay.material(PLAIN, choose(rng, METALS[1:]), scale=0.3, gloss=0.3)
    depth = 0.22 if stand else 0.06
    piece = Piece(width, depth)
    lift = 0.0
    if stand:
        mid = width / 2
        piece.add(mid - 0.15, 0, 0.02, mid + 0.15, 0.02, 0.2, TV, plastic)
        piece.add(mid - 0.03, 0.02, 0.04, mid + 0.03, 0.1, 0.07, TV, plastic)
        lift = 0.06
    piece.add(
        0,
        lift,
        depth - 0.05 if stand else 0.0,
        width,
        lift + height,
        depth - 0.01 if stand else 0.04,
        TV,
        mat,
    )
    return piece


def _small_object(lay: Layout, room_w: float, room_d: float, room_h: float = 0.6) -> Piece:
    """A random small item (class objects unless a book stack) fitting in ``room_w`` x ``room_d``."""
    rng = lay.rng
    kind = rng.choice(
        ["box", "bottle", "lamp", "books", "plant", "flat"], p=[0.3, 0.2, 0.12, 0.13, 0.13, 0.12]
    )
    if kind == "bottle":
        side = uniform(rng, 0.05, 0.1)
        piece = Piece(side, side)
        piece.add(0, 0, 0, side, min(room_h, uniform(rng, 0.12, 0.35)), side, OBJECTS, lay.object_material())
    elif kind == "lamp" and room_w > 0.3 and room_d > 0.3 and room_h >= 0.5:
        shade = uniform(rng, 0.22, 0.32)
        piece = Piece(shade, shade)
        mid = shade / 2
        base = lay.object_material()
        piece.add(mid - 0.06, 0, mid - 0.06, mid + 0.06, 0.04, mid + 0.06, OBJECTS, base)
        piece.add(mid - 0.012, 0.04, mid - 0.012, mid + 0.012, 0.3, mid + 0.012, OBJECTS, base)
        piece.add(
            0,
            0.26,
            0,
            shade,
            0.26 + uniform(rng, 0.15, 0.22),
            shade,
            OBJECTS,
            lay.fabric(FABRIC_WARM[:1] + FABRIC_WARM[4:]),
        )
    elif kind == "books":
        width, depth = uniform(rng, 0.15, 0.24), uniform(rng, 0.2, 0.3)
        piece = Piece(width, depth)
        y = 0.0
        for _ in range(int(rng.integers(1, 5))):
            h = uniform(rng, 0.02, 0.05)
            du, dw = uniform(rng, 0.0, 0.02), uniform(rng, 0.0, 0.02)
            piece.add(
                du,
                y,
                dw,
                width - 0.02 + du,
                y + h,
                depth - 0.02 + dw,
                BOOKS,
                lay.material(PLAIN, choose(rng, BRIGHT + FABRIC_COOL, 0.1), scale=0.3),
            )
            y += h
    elif kind == "plant":
        pot = min(uniform(rng, 0.1, 0.2), room_h * 0.4)
        leaves = pot * uniform(rng, 1.3, 2.0)
        piece = Piece(leaves, leaves)
        off = (leaves - pot) / 2
        piece.add(off, 0, off, off + pot, pot, off + pot, OBJECTS, lay.object_material())
        green = jittered(rng, (0.22, 0.45, 0.18), 0.06)
        foliage = lay.material(SPECKLE, green, darker(green, 0.45), scale=0.02, variant=0)
        piece.add(
            0, pot, 0, leaves, pot + min(uniform(rng, 0.15, 0.45), room_h - pot), leaves, OBJECTS, foliage
        )
    elif kind == "flat":
        width, depth = uniform(rng, 0.2, 0.45), uniform(rng, 0.15, 0.32)
        piece = Piece(width, depth)
        piece.add(0, 0, 0, width, uniform(rng, 0.01, 0.04), depth, OBJECTS, lay.object_material())
    else:
        width, depth = uniform(rng, 0.08, 0.3), uniform(rng, 0.08, 0.3)
        piece = Piece(width, depth)
        piece.add(0, 0, 0, width, min(room_h, uniform(rng, 0.05, 0.3)), depth, OBJECTS, lay.object_material())
    return piece


def place_small_objects(
    lay: Layout, count: int, surfaces: Sequence[Surface] | None = None, max_height: float = 0.5
) -> None:
    """Stand ``count`` small objects on free spots of the given (default: all) surfaces."""
    rng = lay.rng
    pool = list(lay.surfaces if surfaces is None else surfaces)
    if not pool:
        return
    for _ in range(count):
        surface = pool[int(rng.integers(len(pool)))]
        x0, x1, z0, z1 = surface.rect
        room_h = min(max_height, lay.height - surface.height - 0.3)
        if room_h < 0.05:
            continue
        piece = _small_object(lay, x1 - x0, z1 - z0, room_h)
        for _ in range(6):
            rot = int(rng.integers(4))
            fx, fz = footprint_size(piece, rot)
            if fx > x1 - x0 or fz > z1 - z0:
                continue
            cx, cz = uniform(rng, x0 + fx / 2, x1 - fx / 2), uniform(rng, z0 + fz / 2, z1 - fz / 2)
            if lay.put_on(surface, piece, rot, cx, cz):
                break


def floor_items(lay: Layout, count: int) -> None:
    """Plants, boxes and bins standing on the floor near the walls."""
    for _ in range(count):
        piece = _small_object(lay, 0.5, 0.5, 0.9)
        if lay.place_on_wall(piece, tries=8, target=0.0) is None:
            lay.place_free(piece, tries=4, target=0.0, margin=0.5)


def floor_lamp(lay: Layout) -> None:
    rng = lay.rng
    shade, top = uniform(rng, 0.3, 0.42), uniform(rng, 1.4, 1.75)
    piece = Piece(shade, shade)
    metal = lay.material(PLAIN, choose(rng, METALS), scale=0.3, gloss=0.5)
    mid = shade / 2
    piece.add(mid - 0.14, 0, mid - 0.14, mid + 0.14, 0.03, mid + 0.14, OBJECTS, metal)
    piece.add(mid - 0.015, 0.03, mid - 0.015, mid + 0.015, top - 0.2, mid + 0.015, OBJECTS, metal)
    piece.add(0, top - 0.28, 0, shade, top, shade, OBJECTS, lay.fabric(FABRIC_WARM[:1] + FABRIC_WARM[4:]))
    lay.place_on_wall(piece, tries=10, target=0.3)
