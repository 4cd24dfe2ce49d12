"""Room layout: furniture pieces in local coordinates and the ``Layout`` builder that places them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.data.rooms.constants import SCENE_TYPES
from pipeline.data.rooms.materials import (
    ALL_FABRICS,
    ALL_WALLS,
    BRIGHT,
    CABINET,
    FABRIC,
    METALS,
    PAINTED,
    PLAIN,
    SPECKLE,
    STONES,
    STYLES,
    WOOD,
    WOODS,
    Color,
    Material,
    choose,
    darker,
    jittered,
    uniform,
)
from pipeline.data.rooms.scene import RoomScene

Rect = tuple[float, float, float, float]  # x0, x1, z0, z1
LocalBox = tuple[float, float, float, float, float, float, int, int]


@dataclass
class Piece:
    """A piece in local coordinates: ``u`` along its width, ``v`` up, ``w`` from its back (0) to front."""

    width: float
    depth: float
    boxes: list[LocalBox] = field(default_factory=list)
    surfaces: list[tuple[float, float, float, float, float]] = field(default_factory=list)

    def add(
        self, u0: float, v0: float, w0: float, u1: float, v1: float, w1: float, cls: int, mat: int
    ) -> None:
        self.boxes.append((u0, v0, w0, u1, v1, w1, cls, mat))

    def surface(self, u0: float, u1: float, w0: float, w1: float, v: float) -> None:
        """Register a horizontal surface at height ``v`` on which small objects may stand."""
        if u1 - u0 > 0.12 and w1 - w0 > 0.12:
            self.surfaces.append((u0, u1, w0, w1, v))

    @property
    def height(self) -> float:
        return max(box[4] for box in self.boxes)


def _local_to_world(
    rot: int, x0: float, z0: float, piece: Piece, u0: float, u1: float, w0: float, w1: float
) -> Rect:
    """World x/z extent of a local u/w rectangle; ``rot`` turns the piece's front to +z, -x, -z, +x."""
    width, depth = piece.width, piece.depth
    if rot == 0:
        return x0 + u0, x0 + u1, z0 + w0, z0 + w1
    if rot == 1:
        return x0 + depth - w1, x0 + depth - w0, z0 + u0, z0 + u1
    if rot == 2:
        return x0 + width - u1, x0 + width - u0, z0 + depth - w1, z0 + depth - w0
    return x0 + w0, x0 + w1, z0 + width - u1, z0 + width - u0


_FACING_OF_ROT = (5, 0, 4, 1)
"""Facing code (2 * axis + positive) of the front of a piece placed with rotation 0..3."""


def footprint_size(piece: Piece, rot: int) -> tuple[float, float]:
    return (piece.width, piece.depth) if rot % 2 == 0 else (piece.depth, piece.width)


@dataclass
class Surface:
    rect: Rect
    height: float
    group: int
    used: list[Rect] = field(default_factory=list)


class Layout:
    """Builds one room: places furniture, wall items, small objects, the light and the camera."""

    def __init__(self, rng: np.random.Generator, scene: int) -> None:
        self.rng = rng
        self.scene = scene
        self.style = STYLES[SCENE_TYPES[scene]]
        low, high = self.style.size
        self.width = float(rng.uniform(low, high))
        self.depth = float(rng.uniform(low, high))
        self.height = float(rng.uniform(*self.style.height))
        self.materials: list[Material] = []
        self.boxes: list[tuple[tuple[float, ...], tuple[float, ...], int, int, int, int]] = []
        self.group_occludes: list[bool] = []
        self.footprints: list[tuple[Rect, float]] = []  # floor pieces and their top height
        self.keepouts: list[Rect] = []  # floor that must stay free (before doors, under curtains)
        self.spans: list[tuple[int, float, float, float, float]] = []
        self.surfaces: list[Surface] = []
        self.targets: list[tuple[float, float, float, float]] = []  # x, y, z, weight
        self.palette_mix = rng.random() < 0.3  # borrow colours from other scene types

    # -- materials -----------------------------------------------------------------------------

    def material(
        self,
        kind: int,
        c1: Color,
        c2: Color = (0, 0, 0),
        c3: Color = (0, 0, 0),
        scale: float = 1.0,
        variant: int = 0,
        gloss: float = 0.0,
    ) -> int:
        salt = int(self.rng.integers(1, 2**31 - 1))
        self.materials.append(Material(kind, c1, c2, c3, scale, variant, gloss, salt))
        return len(self.materials) - 1

    def colors(self, role: str) -> list[Color]:
        style = self.style
        mixed = self.palette_mix and self.rng.random() < 0.5
        if role == "wall":
            return ALL_WALLS if mixed else style.walls
        if role == "wood":
            return WOODS + PAINTED if mixed else style.woods
        return ALL_FABRICS if mixed else style.fabrics

    def wood(self, painted_p: float = 0.25, gloss: float = 0.1) -> int:
        """A wood (or painted) furniture material in the scene's palette."""
        rng = self.rng
        base = choose(rng, self.colors("wood"))
        if rng.random() < painted_p:
            return self.material(PLAIN, base, scale=0.5, variant=1, gloss=gloss)
        dark = darker(base, uniform(rng, 0.55, 0.75))
        return self.material(WOOD, base, dark, scale=uniform(rng, 0.02, 0.05), gloss=gloss)

    def fabric(self, options: Sequence[Color] | None = None) -> int:
        rng = self.rng
        base = choose(rng, options or self.colors("fabric"))
        accent = choose(rng, ALL_FABRICS + BRIGHT[:4])
        variant = int(rng.choice(3, p=[0.6, 0.2, 0.2]))
        return self.material(FABRIC, base, accent, scale=float(rng.uniform(0.05, 0.2)), variant=variant)

    def cabinet(
        self, body: Color | None = None, variant: int = 0, door: float = 0.45, gloss: float = 0.1
    ) -> int:
        rng = self.rng
        color = body or choose(rng, self.colors("wood"))
        handle = choose(rng, METALS)
        return self.material(
            CABINET, color, handle, scale=door * float(rng.uniform(0.85, 1.15)), variant=variant, gloss=gloss
        )

    def object_material(self) -> int:
        rng = self.rng
        color = choose(rng, BRIGHT + METALS + STONES, 0.08)
        if rng.random() < 0.2:
            return self.material(SPECKLE, color, jittered(rng, color, 0.2), scale=0.05)
        return self.material(PLAIN, color, scale=0.2, variant=1, gloss=float(rng.choice([0.0, 0.3, 0.6])))

    # -- geometry bookkeeping ------------------------------------------------------------------

    def wall_length(self, wall: int) -> float:
        return self.width if wall % 2 == 0 else self.depth

    def wall_point(self, wall: int, along: float, dist: float) -> tuple[float, float]:
        """World (x, z) at ``along`` metres along ``wall`` and ``dist`` metres into the room."""
        return ((along, dist), (self.width - dist, along), (along, self.depth - dist), (dist, along))[wall]

    def new_group(self, occludes: bool = True) -> int:
        self.group_occludes.append(occludes)
        return len(self.group_occludes) - 1

    def add_box(
        self, lo: tuple[float, ...], hi: tuple[float, ...], cls: int, mat: int, facing: int, group: int
    ) -> None:
        self.boxes.append((lo, hi, cls, mat, facing, group))

    def add_piece(
        self,
        piece: Piece,
        rot: int,
        cx: float,
        cz: float,
        *,
        base: float = 0.0,
        group: int | None = None,
        floor: bool = True,
        target: float = 0.0,
        occludes: bool = True,
    ) -> int:
        """Place ``piece`` centred at (cx, cz) with its bottom at ``base``; return its group."""
        fx, fz = footprint_size(piece, rot)
        x0, z0 = cx - fx / 2, cz - fz / 2
        group = self.new_group(occludes) if group is None else group
        for u0, v0, w0, u1, v1, w1, cls, mat in piece.boxes:
            xa, xb, za, zb = _local_to_world(rot, x0, z0, piece, u0, u1, w0, w1)
            self.add_box((xa, base + v0, za), (xb, base + v1, zb), cls, mat, _FACING_OF_ROT[rot], group)
        for u0, u1, w0, w1, v in piece.surfaces:
            self.surfaces.append(
                Surface(_local_to_world(rot, x0, z0, piece, u0, u1, w0, w1), base + v, group)
            )
        rect = (x0, x0 + fx, z0, z0 + fz)
        if floor:
            self.footprints.append((rect, base + piece.height))
        for wall, s0, s1 in self.touched_walls(rect):
            self.spans.append((wall, s0, s1, base, base + piece.height))
        if target > 0:
            self.targets.append((cx, base + piece.height * 0.6, cz, target))
        return group

    def touched_walls(self, rect: Rect, reach: float = 0.06) -> list[tuple[int, float, float]]:
        """Walls within ``reach`` of ``rect`` and the stretch of each that it covers."""
        x0, x1, z0, z1 = rect
        walls = []
        if z0 < reach:
            walls.append((0, x0, x1))
        if x1 > self.width - reach:
            walls.append((1, z0, z1))
        if z1 > self.depth - reach:
            walls.append((2, x0, x1))
        if x0 < reach:
            walls.append((3, z0, z1))
        return walls

    def rect_free(self, rect: Rect, margin: float = 0.05, height: float = 3.0, base: float = 0.0) -> bool:
        """Inside the room, clear of other footprints and of wall items it would overlap."""
        x0, x1, z0, z1 = rect
        if x0 < -1e-6 or z0 < -1e-6 or x1 > self.width + 1e-6 or z1 > self.depth + 1e-6:
            return False
        for a0, a1, b0, b1 in [rect for rect, _ in self.footprints] + self.keepouts:
            if x0 < a1 + margin and a0 < x1 + margin and z0 < b1 + margin and b0 < z1 + margin:
                return False
        return all(
            self.span_free(wall, s0, s1, base, base + height) for wall, s0, s1 in self.touched_walls(rect)
        )

    def span_free(self, wall: int, s0: float, s1: float, y0: float, y1: float, margin: float = 0.05) -> bool:
        for other, a0, a1, b0, b1 in self.spans:
            if (
                other == wall
                and s0 < a1 + margin
                and a0 < s1 + margin
                and y0 < b1 + margin
                and b0 < y1 + margin
            ):
                return False
        return True

    def place_on_wall(
        self, piece: Piece, walls: Sequence[int] | None = None, tries: int = 30, target: float = 1.0
    ) -> tuple[int, float] | None:
        """Put ``piece`` with its back against a random free stretch of wall; return (wall, centre along)."""
        for _ in range(tries):
            wall = int(self.rng.choice(walls)) if walls else int(self.rng.integers(4))
            length = self.wall_length(wall)
            if piece.width > length - 0.1:
                continue
            along = uniform(self.rng, piece.width / 2 + 0.05, length - piece.width / 2 - 0.05)
            cx, cz = self.wall_point(wall, along, piece.depth / 2 + 0.005)
            if self.try_add(piece, wall, cx, cz, target=target):
                return wall, along
        return None

    def try_add(
        self, piece: Piece, rot: int, cx: float, cz: float, target: float = 0.0, margin: float = 0.05
    ) -> bool:
        fx, fz = footprint_size(piece, rot)
        rect = (cx - fx / 2, cx + fx / 2, cz - fz / 2, cz + fz / 2)
        if not self.rect_free(rect, margin=margin, height=piece.height):
            return False
        self.add_piece(piece, rot, cx, cz, target=target)
        return True

    def place_free(
        self, piece: Piece, tries: int = 30, target: float = 1.0, margin: float = 0.4
    ) -> tuple[int, float, float] | None:
        """Put ``piece`` somewhere in the room interior, clear of walls and other pieces by ``margin``."""
        for _ in range(tries):
            rot = int(self.rng.integers(4))
            fx, fz = footprint_size(piece, rot)
            if fx > self.width - 2 * margin or fz > self.depth - 2 * margin:
                continue
            cx = uniform(self.rng, fx / 2 + margin, self.width - fx / 2 - margin)
            cz = uniform(self.rng, fz / 2 + margin, self.depth - fz / 2 - margin)
            if self.try_add(piece, rot, cx, cz, target=target, margin=margin):
                return rot, cx, cz
        return None

    def mount_on_wall(
        self,
        piece: Piece,
        bottom: float,
        walls: Sequence[int] | None = None,
        tries: int = 25,
        inset: float = 0.0,
        occludes: bool = True,
        along: float | None = None,
    ) -> tuple[int, float] | None:
        """Hang ``piece`` on a wall with its bottom at ``bottom`` (pictures, windows, wall cabinets)."""
        for _ in range(tries):
            wall = int(self.rng.choice(walls)) if walls else int(self.rng.integers(4))
            length = self.wall_length(wall)
            if piece.width > length - 0.3:
                continue
            centre = (
                along
                if along is not None
                else uniform(self.rng, piece.width / 2 + 0.15, length - piece.width / 2 - 0.15)
            )
            s0, s1 = centre - piece.width / 2, centre + piece.width / 2
            if not self.span_free(wall, s0, s1, bottom, bottom + piece.height):
                continue
            if not self.corner_clear(wall, s0, s1, bottom, piece.depth - inset):
                continue
            cx, cz = self.wall_point(wall, centre, piece.depth / 2 - inset + 0.002)
            if self.collides(piece, wall, cx, cz, bottom):
                continue
            self.add_piece(piece, wall, cx, cz, base=bottom, floor=False, occludes=occludes)
            if bottom < 1.0:  # low wall items (curtains, towels, doors) keep the floor before them free
                self.keepouts.append(self.wall_rect(wall, s0, s1, piece.depth - inset))
            return wall, centre
        return None

    def put_on(self, surface: Surface, piece: Piece, rot: int, cx: float, cz: float) -> bool:
        """Stand ``piece`` on ``surface`` unless it overlaps other items there or any box above."""
        fx, fz = footprint_size(piece, rot)
        rect = (cx - fx / 2, cx + fx / 2, cz - fz / 2, cz + fz / 2)
        for a0, a1, b0, b1 in surface.used:
            if a0 < rect[1] and rect[0] < a1 and b0 < rect[3] and rect[2] < b1:
                return False
        if self.collides(piece, rot, cx, cz, surface.height):
            return False
        surface.used.append(rect)
        self.add_piece(piece, rot, cx, cz, base=surface.height, group=surface.group, floor=False)
        return True

    def collides(self, piece: Piece, rot: int, cx: float, cz: float, base: float, eps: float = 2e-3) -> bool:
        """Whether ``piece`` placed so would cut into a box already in the room (touching is fine)."""
        if not self.boxes:
            return False
        lo = np.array([box[0] for box in self.boxes])
        hi = np.array([box[1] for box in self.boxes])
        fx, fz = footprint_size(piece, rot)
        for u0, v0, w0, u1, v1, w1, _, _ in piece.boxes:
            xa, xb, za, zb = _local_to_world(rot, cx - fx / 2, cz - fz / 2, piece, u0, u1, w0, w1)
            new_lo, new_hi = np.array([xa, base + v0, za]), np.array([xb, base + v1, zb])
            if ((np.minimum(hi, new_hi) - np.maximum(lo, new_lo)) > eps).all(axis=1).any():
                return True
        return False

    def corner_clear(self, wall: int, s0: float, s1: float, bottom: float, depth: float) -> bool:
        """No floor piece taller than ``bottom`` stands in front of the wall stretch (incl. corners)."""
        x0, x1, z0, z1 = self.wall_rect(wall, s0, s1, depth)
        for (a0, a1, b0, b1), top in self.footprints:
            if top > bottom and x0 < a1 and a0 < x1 and z0 < b1 and b0 < z1:
                return False
        return True

    def wall_rect(self, wall: int, s0: float, s1: float, depth: float) -> Rect:
        """Floor rectangle in front of the wall stretch ``s0..s1``, ``depth`` metres deep."""
        return {
            0: (s0, s1, 0.0, depth), 1: (self.width - depth, self.width, s0, s1),
            2: (s0, s1, self.depth - depth, self.depth), 3: (0.0, depth, s0, s1),
        }[wall]  # fmt: skip

    # -- export --------------------------------------------------------------------------------

    def to_scene(self, **extra: object) -> RoomScene:
        lo = np.array([box[0] for box in self.boxes], dtype=np.float32).reshape(-1, 3)
        hi = np.array([box[1] for box in self.boxes], dtype=np.float32).reshape(-1, 3)
        group = np.array([box[5] for box in self.boxes], dtype=np.int64)
        members = [np.flatnonzero(group == g) for g in range(len(self.group_occludes))]
        keep = [g for g, ids in enumerate(members) if ids.size]
        group_lo = np.array([lo[members[g]].min(0) for g in keep], dtype=np.float32).reshape(-1, 3)
        group_hi = np.array([hi[members[g]].max(0) for g in keep], dtype=np.float32).reshape(-1, 3)
        return RoomScene(
            scene=self.scene,
            size=np.array([self.width, self.height, self.depth], dtype=np.float32),
            lo=lo,
            hi=hi,
            cls=np.array([box[2] for box in self.boxes], dtype=np.uint8),
            mat=np.array([box[3] for box in self.boxes], dtype=np.int64),
            facing=np.array([box[4] for box in self.boxes], dtype=np.int64),
            group_boxes=[members[g] for g in keep],
            group_lo=group_lo,
            group_hi=group_hi,
            group_occludes=np.array([self.group_occludes[g] for g in keep], dtype=bool),
            materials=self.materials,
            **extra,  # type: ignore[arg-type]
        )
