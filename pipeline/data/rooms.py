"""The embedded default dataset ``rooms``: procedural indoor scenes, ray cast with vectorised numpy.

Every sample is a pure function of ``(seed, index, resolution)``. The scene -- a closed room box,
furniture built from axis-aligned boxes, materials, one ceiling light and the camera -- depends on
``(seed, index)`` only, so an index shows the same room at every resolution; the sensor noise has
its own random stream. Labels are exact: the 13 NYUv2 classes, z-depth in metres along the optical
axis and unit normals in the OpenCV camera frame (x right, y down, z forward) facing the camera.

World frame: x and z span the floor (``0..width`` and ``0..depth``), y points up (floor at 0).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.data.schema import NYU13_CLASSES, Sample
from pipeline.data.source import Source

SCENE_TYPES: tuple[str, ...] = ("bedroom", "kitchen", "living_room", "office", "bathroom", "dining_room")
"""Scene types of the rooms dataset (the ``scene`` field indexes this tuple)."""

MIN_RESOLUTION = 32
MAX_RESOLUTION = 256
VAL_OFFSET = 10_000_000
TEST_OFFSET = 20_000_000
_NOISE_STREAM = 0x5E45
_SCENE_STREAM = 0x5CE7E

(BED, BOOKS, CEILING, CHAIR, FLOOR, FURNITURE, OBJECTS, PICTURE, SOFA, TABLE, TV, WALL, WINDOW) = (
    NYU13_CLASSES.index(name)
    for name in (
        "bed", "books", "ceiling", "chair", "floor", "furniture", "objects",
        "picture", "sofa", "table", "tv", "wall", "window",
    )
)  # fmt: skip

Color = tuple[float, float, float]
Rect = tuple[float, float, float, float]  # x0, x1, z0, z1

# ----------------------------------------------------------------------------------------------
# Materials and palettes
# ----------------------------------------------------------------------------------------------

(PLAIN, WOOD, TILES, FABRIC, SPECKLE, STRIPES, PAINTING, BOOK_SPINES, CABINET, WINDOW_VIEW, SCREEN, LAMP) = (
    range(12)
)


@dataclass(frozen=True)
class Material:
    """A procedural surface: ``kind`` picks the pattern, the other fields parametrise it."""

    kind: int
    c1: Color
    c2: Color = (0.0, 0.0, 0.0)
    c3: Color = (0.0, 0.0, 0.0)
    scale: float = 1.0
    variant: int = 0
    gloss: float = 0.0
    salt: int = 0


_WALLS_WARM = [
    (0.93, 0.89, 0.82),
    (0.90, 0.80, 0.68),
    (0.93, 0.86, 0.70),
    (0.90, 0.78, 0.75),
    (0.82, 0.76, 0.84),
]
_WALLS_COOL = [
    (0.86, 0.88, 0.90),
    (0.72, 0.81, 0.88),
    (0.77, 0.85, 0.80),
    (0.80, 0.80, 0.80),
    (0.68, 0.72, 0.77),
]
_WALLS_NEUTRAL = [(0.95, 0.95, 0.93), (0.88, 0.87, 0.84), (0.78, 0.76, 0.72)]
_WALLS_BOLD = [
    (0.62, 0.32, 0.27),
    (0.32, 0.44, 0.38),
    (0.30, 0.36, 0.50),
    (0.80, 0.62, 0.32),
    (0.45, 0.47, 0.50),
]
_WOODS = [(0.80, 0.64, 0.44), (0.64, 0.44, 0.28), (0.48, 0.31, 0.19), (0.33, 0.21, 0.14), (0.72, 0.54, 0.38)]
_PAINTED = [
    (0.93, 0.93, 0.91),
    (0.20, 0.20, 0.21),
    (0.55, 0.56, 0.58),
    (0.62, 0.70, 0.74),
    (0.80, 0.76, 0.68),
]
_FABRIC_WARM = [
    (0.86, 0.79, 0.67),
    (0.72, 0.36, 0.30),
    (0.83, 0.62, 0.34),
    (0.66, 0.48, 0.52),
    (0.92, 0.90, 0.86),
]
_FABRIC_COOL = [
    (0.40, 0.45, 0.52),
    (0.22, 0.28, 0.42),
    (0.30, 0.42, 0.36),
    (0.55, 0.55, 0.55),
    (0.20, 0.20, 0.22),
]
_LEATHER = [(0.42, 0.25, 0.15), (0.16, 0.14, 0.13), (0.60, 0.40, 0.25)]
_TILES_LIGHT = [
    (0.94, 0.94, 0.93),
    (0.85, 0.88, 0.91),
    (0.72, 0.84, 0.89),
    (0.89, 0.85, 0.77),
    (0.80, 0.90, 0.86),
]
_TILES_DARK = [(0.30, 0.32, 0.35), (0.58, 0.37, 0.28), (0.45, 0.50, 0.56), (0.20, 0.30, 0.45)]
_CARPETS = [
    (0.56, 0.53, 0.48),
    (0.42, 0.44, 0.51),
    (0.63, 0.57, 0.47),
    (0.37, 0.31, 0.29),
    (0.50, 0.55, 0.50),
]
_STONES = [(0.86, 0.86, 0.84), (0.22, 0.22, 0.24), (0.60, 0.58, 0.55), (0.75, 0.70, 0.62)]
_METALS = [(0.75, 0.76, 0.78), (0.45, 0.46, 0.48), (0.15, 0.15, 0.16)]
_BRIGHT = [
    (0.85, 0.20, 0.18), (0.18, 0.40, 0.75), (0.95, 0.75, 0.15), (0.20, 0.60, 0.35), (0.92, 0.92, 0.90),
    (0.12, 0.12, 0.13), (0.60, 0.30, 0.65), (0.95, 0.55, 0.25), (0.55, 0.75, 0.85), (0.70, 0.62, 0.50),
]  # fmt: skip


@dataclass(frozen=True)
class _Style:
    """Per-scene-type preferences for room and furniture materials (probabilistic, overlapping)."""

    size: tuple[float, float]
    height: tuple[float, float]
    walls: list[Color]
    floors: dict[str, float]
    woods: list[Color]
    fabrics: list[Color]
    wall_tiles: float = 0.0


_STYLES: dict[str, _Style] = {
    "bedroom": _Style(
        size=(3.0, 5.0), height=(2.4, 2.8), walls=_WALLS_WARM + _WALLS_NEUTRAL,
        floors={"wood": 0.5, "carpet": 0.45, "tile": 0.05},
        woods=_WOODS + _PAINTED[:1], fabrics=_FABRIC_WARM + _FABRIC_COOL[:2],
    ),
    "kitchen": _Style(
        size=(3.0, 5.5), height=(2.4, 3.0), walls=_WALLS_NEUTRAL + _WALLS_WARM[2:4] + _WALLS_COOL[:2],
        floors={"tile": 0.5, "checker": 0.2, "wood": 0.3},
        woods=_PAINTED + _WOODS[:2], fabrics=_FABRIC_WARM, wall_tiles=0.35,
    ),
    "living_room": _Style(
        size=(4.0, 7.0), height=(2.5, 3.2), walls=_WALLS_WARM + _WALLS_BOLD + _WALLS_NEUTRAL,
        floors={"wood": 0.6, "carpet": 0.3, "tile": 0.1},
        woods=_WOODS, fabrics=_FABRIC_COOL + _LEATHER + _FABRIC_WARM[:2],
    ),
    "office": _Style(
        size=(3.0, 6.0), height=(2.5, 3.0), walls=_WALLS_COOL + _WALLS_NEUTRAL,
        floors={"carpet": 0.6, "wood": 0.2, "tile": 0.2},
        woods=_PAINTED + _WOODS[:1], fabrics=_FABRIC_COOL,
    ),
    "bathroom": _Style(
        size=(2.0, 3.4), height=(2.3, 2.7), walls=_WALLS_COOL + _WALLS_NEUTRAL[:1],
        floors={"tile": 0.75, "checker": 0.25},
        woods=_PAINTED[:1] + _PAINTED[3:] + _WOODS[:1], fabrics=_FABRIC_COOL[:1] + _FABRIC_WARM[4:],
        wall_tiles=0.75,
    ),
    "dining_room": _Style(
        size=(3.5, 6.0), height=(2.5, 3.1), walls=_WALLS_WARM + _WALLS_BOLD[:2] + _WALLS_NEUTRAL,
        floors={"wood": 0.7, "tile": 0.3},
        woods=_WOODS + _PAINTED[1:2], fabrics=_FABRIC_WARM + _FABRIC_COOL[2:3],
    ),
}  # fmt: skip

_ALL_WALLS = _WALLS_WARM + _WALLS_COOL + _WALLS_NEUTRAL + _WALLS_BOLD
_ALL_FABRICS = _FABRIC_WARM + _FABRIC_COOL + _LEATHER


def _jitter(rng: np.random.Generator, color: Color, amount: float = 0.05) -> Color:
    """``color`` with random brightness and per-channel changes (clipped to [0.02, 0.98])."""
    scaled = np.clip(np.asarray(color) * rng.uniform(0.88, 1.08) + rng.normal(0.0, amount, 3), 0.02, 0.98)
    return float(scaled[0]), float(scaled[1]), float(scaled[2])


def _u(rng: np.random.Generator, low: float, high: float) -> float:
    """Uniform draw from [low, high] (a range collapsed by rounding gives ``low``)."""
    return float(rng.uniform(low, max(low, high)))


def _darker(color: Color, factor: float) -> Color:
    return color[0] * factor, color[1] * factor, color[2] * factor


def _choose(rng: np.random.Generator, options: Sequence[Color], jitter: float = 0.05) -> Color:
    return _jitter(rng, options[int(rng.integers(len(options)))], jitter)


# ----------------------------------------------------------------------------------------------
# Furniture pieces in local coordinates
# ----------------------------------------------------------------------------------------------

LocalBox = tuple[float, float, float, float, float, float, int, int]


@dataclass
class _Piece:
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
    rot: int, x0: float, z0: float, piece: _Piece, u0: float, u1: float, w0: float, w1: float
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


def _footprint_size(piece: _Piece, rot: int) -> tuple[float, float]:
    return (piece.width, piece.depth) if rot % 2 == 0 else (piece.depth, piece.width)


@dataclass
class _Surface:
    rect: Rect
    height: float
    group: int
    used: list[Rect] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# The scene description (everything but the pixels)
# ----------------------------------------------------------------------------------------------


@dataclass
class RoomScene:
    """A room ready to render: boxes, groups, materials, light and camera (independent of resolution)."""

    scene: int
    size: np.ndarray  # (3,) width, height, depth
    lo: np.ndarray  # (B, 3)
    hi: np.ndarray  # (B, 3)
    cls: np.ndarray  # (B,)
    mat: np.ndarray  # (B,)
    facing: np.ndarray  # (B,)
    group_boxes: list[np.ndarray]
    group_lo: np.ndarray
    group_hi: np.ndarray
    group_occludes: np.ndarray
    materials: list[Material]
    room_mats: dict[str, int]
    wall_mats: tuple[int, int, int, int]
    dado_height: float
    baseboard: float
    light: np.ndarray
    ambient: float
    ambient_tint: Color
    cam_position: np.ndarray
    cam_rotation: np.ndarray  # columns: camera x (right), y (down), z (forward) in world coordinates
    tan_half_fov: float
    noise_sigma: float


class _Layout:
    """Builds one room: places furniture, wall items, small objects, the light and the camera."""

    def __init__(self, rng: np.random.Generator, scene: int) -> None:
        self.rng = rng
        self.scene = scene
        self.style = _STYLES[SCENE_TYPES[scene]]
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
        self.surfaces: list[_Surface] = []
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
            return _ALL_WALLS if mixed else style.walls
        if role == "wood":
            return _WOODS + _PAINTED if mixed else style.woods
        return _ALL_FABRICS if mixed else style.fabrics

    def wood(self, painted_p: float = 0.25, gloss: float = 0.1) -> int:
        """A wood (or painted) furniture material in the scene's palette."""
        rng = self.rng
        base = _choose(rng, self.colors("wood"))
        if rng.random() < painted_p:
            return self.material(PLAIN, base, scale=0.5, variant=1, gloss=gloss)
        dark = _darker(base, _u(rng, 0.55, 0.75))
        return self.material(WOOD, base, dark, scale=_u(rng, 0.02, 0.05), gloss=gloss)

    def fabric(self, options: Sequence[Color] | None = None) -> int:
        rng = self.rng
        base = _choose(rng, options or self.colors("fabric"))
        accent = _choose(rng, _ALL_FABRICS + _BRIGHT[:4])
        variant = int(rng.choice(3, p=[0.6, 0.2, 0.2]))
        return self.material(FABRIC, base, accent, scale=float(rng.uniform(0.05, 0.2)), variant=variant)

    def cabinet(
        self, body: Color | None = None, variant: int = 0, door: float = 0.45, gloss: float = 0.1
    ) -> int:
        rng = self.rng
        color = body or _choose(rng, self.colors("wood"))
        handle = _choose(rng, _METALS)
        return self.material(
            CABINET, color, handle, scale=door * float(rng.uniform(0.85, 1.15)), variant=variant, gloss=gloss
        )

    def object_material(self) -> int:
        rng = self.rng
        color = _choose(rng, _BRIGHT + _METALS + _STONES, 0.08)
        if rng.random() < 0.2:
            return self.material(SPECKLE, color, _jitter(rng, color, 0.2), scale=0.05)
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
        piece: _Piece,
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
        fx, fz = _footprint_size(piece, rot)
        x0, z0 = cx - fx / 2, cz - fz / 2
        group = self.new_group(occludes) if group is None else group
        for u0, v0, w0, u1, v1, w1, cls, mat in piece.boxes:
            xa, xb, za, zb = _local_to_world(rot, x0, z0, piece, u0, u1, w0, w1)
            self.add_box((xa, base + v0, za), (xb, base + v1, zb), cls, mat, _FACING_OF_ROT[rot], group)
        for u0, u1, w0, w1, v in piece.surfaces:
            self.surfaces.append(
                _Surface(_local_to_world(rot, x0, z0, piece, u0, u1, w0, w1), base + v, group)
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
        self, piece: _Piece, walls: Sequence[int] | None = None, tries: int = 30, target: float = 1.0
    ) -> tuple[int, float] | None:
        """Put ``piece`` with its back against a random free stretch of wall; return (wall, centre along)."""
        for _ in range(tries):
            wall = int(self.rng.choice(walls)) if walls else int(self.rng.integers(4))
            length = self.wall_length(wall)
            if piece.width > length - 0.1:
                continue
            along = _u(self.rng, piece.width / 2 + 0.05, length - piece.width / 2 - 0.05)
            cx, cz = self.wall_point(wall, along, piece.depth / 2 + 0.005)
            if self.try_add(piece, wall, cx, cz, target=target):
                return wall, along
        return None

    def try_add(
        self, piece: _Piece, rot: int, cx: float, cz: float, target: float = 0.0, margin: float = 0.05
    ) -> bool:
        fx, fz = _footprint_size(piece, rot)
        rect = (cx - fx / 2, cx + fx / 2, cz - fz / 2, cz + fz / 2)
        if not self.rect_free(rect, margin=margin, height=piece.height):
            return False
        self.add_piece(piece, rot, cx, cz, target=target)
        return True

    def place_free(
        self, piece: _Piece, tries: int = 30, target: float = 1.0, margin: float = 0.4
    ) -> tuple[int, float, float] | None:
        """Put ``piece`` somewhere in the room interior, clear of walls and other pieces by ``margin``."""
        for _ in range(tries):
            rot = int(self.rng.integers(4))
            fx, fz = _footprint_size(piece, rot)
            if fx > self.width - 2 * margin or fz > self.depth - 2 * margin:
                continue
            cx = _u(self.rng, fx / 2 + margin, self.width - fx / 2 - margin)
            cz = _u(self.rng, fz / 2 + margin, self.depth - fz / 2 - margin)
            if self.try_add(piece, rot, cx, cz, target=target, margin=margin):
                return rot, cx, cz
        return None

    def mount_on_wall(
        self,
        piece: _Piece,
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
                else _u(self.rng, piece.width / 2 + 0.15, length - piece.width / 2 - 0.15)
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

    def put_on(self, surface: _Surface, piece: _Piece, rot: int, cx: float, cz: float) -> bool:
        """Stand ``piece`` on ``surface`` unless it overlaps other items there or any box above."""
        fx, fz = _footprint_size(piece, rot)
        rect = (cx - fx / 2, cx + fx / 2, cz - fz / 2, cz + fz / 2)
        for a0, a1, b0, b1 in surface.used:
            if a0 < rect[1] and rect[0] < a1 and b0 < rect[3] and rect[2] < b1:
                return False
        if self.collides(piece, rot, cx, cz, surface.height):
            return False
        surface.used.append(rect)
        self.add_piece(piece, rot, cx, cz, base=surface.height, group=surface.group, floor=False)
        return True

    def collides(self, piece: _Piece, rot: int, cx: float, cz: float, base: float, eps: float = 2e-3) -> bool:
        """Whether ``piece`` placed so would cut into a box already in the room (touching is fine)."""
        if not self.boxes:
            return False
        lo = np.array([box[0] for box in self.boxes])
        hi = np.array([box[1] for box in self.boxes])
        fx, fz = _footprint_size(piece, rot)
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


# ----------------------------------------------------------------------------------------------
# Piece builders
# ----------------------------------------------------------------------------------------------


def _bed(lay: _Layout) -> _Piece:
    rng = lay.rng
    width = float(rng.choice([0.95, 1.45, 1.65, 1.85])) + _u(rng, -0.05, 0.05)
    length = _u(rng, 1.95, 2.15)
    frame_h, mattress_h = _u(rng, 0.22, 0.35), _u(rng, 0.18, 0.26)
    frame = lay.wood(painted_p=0.3)
    piece = _Piece(width, length)
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
        lay.fabric(_FABRIC_WARM[4:] + _FABRIC_WARM[:1]),
    )
    piece.add(
        0, 0, 0, width, top + _u(rng, 0.35, 0.75), 0.07, BED, frame if rng.random() < 0.6 else lay.fabric()
    )
    piece.add(
        -0.01,
        frame_h + 0.06,
        length * _u(rng, 0.35, 0.5),
        width + 0.01,
        top + 0.05,
        length + 0.01,
        BED,
        lay.fabric(),
    )
    pillow = lay.fabric(_FABRIC_WARM[4:] + _FABRIC_COOL[3:4] + _FABRIC_WARM[:1])
    count = 1 if width < 1.2 else 2
    pw = (width - 0.16) / count - 0.04
    for i in range(count):
        u0 = 0.08 + i * (pw + 0.08)
        piece.add(u0, top, 0.1, u0 + pw, top + _u(rng, 0.1, 0.15), 0.1 + _u(rng, 0.32, 0.45), OBJECTS, pillow)
    return piece


def _cabinet(
    lay: _Layout,
    width: float,
    depth: float,
    height: float,
    variant: int = 0,
    body: int | None = None,
    top_mat: int | None = None,
) -> _Piece:
    """A cabinet / dresser / wardrobe / nightstand (class furniture) with a top board and plinth."""
    rng = lay.rng
    door = 0.45 if variant != 1 else _u(rng, 0.16, 0.25)
    body = lay.cabinet(variant=variant, door=door) if body is None else body
    top_mat = top_mat if top_mat is not None else (lay.wood(painted_p=0.4) if rng.random() < 0.5 else body)
    plinth = _u(rng, 0.03, 0.1)
    piece = _Piece(width, depth)
    piece.add(
        0.03,
        0,
        0.02,
        width - 0.03,
        plinth,
        depth - 0.04,
        FURNITURE,
        lay.material(PLAIN, _choose(rng, _PAINTED[1:3]), scale=0.3),
    )
    piece.add(0.01, plinth, 0, width - 0.01, height - 0.025, depth - 0.01, FURNITURE, body)
    piece.add(0, height - 0.025, 0, width, height, depth, FURNITURE, top_mat)
    piece.surface(0.04, width - 0.04, 0.04, depth - 0.04, height)
    return piece


def _table(lay: _Layout, width: float, depth: float, height: float, mat: int | None = None) -> _Piece:
    rng = lay.rng
    mat = lay.wood(painted_p=0.25, gloss=0.2) if mat is None else mat
    legs = mat if rng.random() < 0.7 else lay.material(PLAIN, _choose(rng, _METALS), scale=0.3, gloss=0.4)
    thick, leg, inset = _u(rng, 0.025, 0.05), _u(rng, 0.035, 0.07), _u(rng, 0.02, 0.08)
    piece = _Piece(width, depth)
    piece.add(0, height - thick, 0, width, height, depth, TABLE, mat)
    for u in (inset, width - inset - leg):
        for w in (inset, depth - inset - leg):
            piece.add(u, 0, w, u + leg, height - thick, w + leg, TABLE, legs)
    if rng.random() < 0.3 and height < 0.55:  # coffee table with a lower shelf
        piece.add(inset, 0.08, inset, width - inset, 0.1, depth - inset, TABLE, mat)
    piece.surface(0.03, width - 0.03, 0.03, depth - 0.03, height)
    return piece


def _chair(lay: _Layout, mat: int | None = None, office: bool = False) -> _Piece:
    rng = lay.rng
    width, depth = _u(rng, 0.42, 0.5), _u(rng, 0.42, 0.5)
    seat = _u(rng, 0.43, 0.48)
    piece = _Piece(width, depth)
    if office:
        dark = lay.material(PLAIN, _choose(rng, _METALS[1:]), scale=0.3, gloss=0.3)
        cushion = lay.fabric(_FABRIC_COOL)
        mid_u, mid_w = width / 2, depth / 2
        piece.add(0, 0.03, mid_w - 0.03, width, 0.08, mid_w + 0.03, CHAIR, dark)
        piece.add(mid_u - 0.03, 0.03, 0, mid_u + 0.03, 0.08, depth, CHAIR, dark)
        piece.add(mid_u - 0.025, 0.08, mid_w - 0.025, mid_u + 0.025, seat - 0.07, mid_w + 0.025, CHAIR, dark)
        piece.add(0, seat - 0.07, 0.02, width, seat, depth, CHAIR, cushion)
        piece.add(mid_u - 0.02, seat - 0.07, 0.0, mid_u + 0.02, seat + 0.12, 0.03, CHAIR, dark)
        piece.add(0.02, seat + 0.08, 0.0, width - 0.02, seat + _u(rng, 0.45, 0.6), 0.07, CHAIR, cushion)
        return piece
    mat = lay.wood(painted_p=0.35) if mat is None else mat
    leg = _u(rng, 0.03, 0.045)
    for u in (0, width - leg):
        for w in (0, depth - leg):
            piece.add(u, 0, w, u + leg, seat - 0.04, w + leg, CHAIR, mat)
    seat_mat = mat if rng.random() < 0.6 else lay.fabric()
    piece.add(0, seat - 0.04, 0, width, seat, depth, CHAIR, seat_mat)
    back = _u(rng, 0.35, 0.5)
    if rng.random() < 0.5:
        piece.add(0, seat, 0, width, seat + back, 0.035, CHAIR, mat)
    else:
        piece.add(0, seat, 0, leg, seat + back, leg, CHAIR, mat)
        piece.add(width - leg, seat, 0, width, seat + back, leg, CHAIR, mat)
        piece.add(0, seat + back - 0.12, 0, width, seat + back, 0.03, CHAIR, mat)
    return piece


def _sofa(lay: _Layout, seats: int, mat: int | None = None) -> _Piece:
    rng = lay.rng
    arm = _u(rng, 0.12, 0.22)
    width = seats * _u(rng, 0.55, 0.7) + 2 * arm
    depth = _u(rng, 0.8, 0.95)
    mat = lay.fabric(lay.colors("fabric")) if mat is None else mat
    cushion = mat if rng.random() < 0.6 else lay.fabric()
    base, seat_top, back_top, arm_top = (
        _u(rng, 0.08, 0.15),
        _u(rng, 0.4, 0.46),
        _u(rng, 0.75, 0.9),
        _u(rng, 0.55, 0.68),
    )
    piece = _Piece(width, depth)
    legs = lay.material(PLAIN, _choose(rng, _WOODS[2:] + _METALS[2:]), scale=0.3)
    piece.add(arm, 0.0, 0.05, width - arm, base, depth - 0.05, SOFA, legs)
    piece.add(0, base, 0, width, seat_top - 0.1, depth, SOFA, mat)
    piece.add(arm, base, 0, width - arm, back_top, _u(rng, 0.15, 0.22), SOFA, mat)
    piece.add(0, base, 0, arm, arm_top, depth, SOFA, mat)
    piece.add(width - arm, base, 0, width, arm_top, depth, SOFA, mat)
    inner = (width - 2 * arm) / seats
    for i in range(seats):
        u0 = arm + i * inner + 0.005
        piece.add(u0, seat_top - 0.1, 0.2, u0 + inner - 0.01, seat_top, depth - 0.01, SOFA, cushion)
    if rng.random() < 0.5:
        pillow = lay.fabric(_BRIGHT[:4] + _FABRIC_WARM)
        for u0 in (arm + 0.04, width - arm - 0.44):
            piece.add(u0, seat_top, 0.18, u0 + 0.4, seat_top + 0.36, 0.3, OBJECTS, pillow)
    return piece


def _bookshelf(lay: _Layout, width: float, depth: float, height: float, books_p: float = 0.8) -> _Piece:
    """A shelf unit (furniture) whose levels hold runs of books (class books) and objects."""
    rng = lay.rng
    frame = lay.wood(painted_p=0.4)
    thick = _u(rng, 0.02, 0.03)
    piece = _Piece(width, depth)
    piece.add(0, 0, 0, thick, height, depth, FURNITURE, frame)
    piece.add(width - thick, 0, 0, width, height, depth, FURNITURE, frame)
    piece.add(thick, height - thick, 0, width - thick, height, depth, FURNITURE, frame)
    piece.add(thick, 0, 0, width - thick, 0.06, depth, FURNITURE, frame)
    piece.add(thick, 0.06, 0, width - thick, height - thick, 0.012, FURNITURE, frame)
    levels = max(1, round((height - 0.06) / _u(rng, 0.3, 0.4)))
    gap = (height - 0.06 - thick) / levels
    books = lay.material(
        BOOK_SPINES, (0.9, 0.87, 0.78), scale=_u(rng, 0.025, 0.045), variant=int(rng.integers(2))
    )
    for level in range(levels):
        floor = 0.06 + level * gap
        if level > 0:
            piece.add(thick, floor - thick, 0.012, width - thick, floor, depth, FURNITURE, frame)
        _fill_shelf(
            lay, piece, thick + 0.01, width - thick - 0.01, floor, gap - thick - 0.02, depth, books, books_p
        )
    piece.surface(0.03, width - 0.03, 0.03, depth - 0.03, height)
    return piece


def _fill_shelf(
    lay: _Layout,
    piece: _Piece,
    u0: float,
    u1: float,
    floor: float,
    room: float,
    depth: float,
    books: int,
    books_p: float,
) -> None:
    rng = lay.rng
    u = u0 + _u(rng, 0.0, 0.08)
    while u < u1 - 0.06:
        run = min(_u(rng, 0.1, 0.45), u1 - u)
        choice = rng.random()
        if choice < books_p:
            top = floor + room * _u(rng, 0.65, 0.95)
            book_depth = depth * _u(rng, 0.6, 0.9)
            piece.add(u, floor, depth - 0.015 - book_depth, u + run, top, depth - 0.015, BOOKS, books)
        elif choice < books_p + (1 - books_p) * 0.6:
            size = min(run, _u(rng, 0.08, 0.2))
            top = floor + min(room, _u(rng, 0.08, 0.25))
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
        u += run + _u(rng, 0.0, 0.1)


def _counter(lay: _Layout, length: float) -> _Piece:
    rng = lay.rng
    body = lay.cabinet(variant=int(rng.choice([0, 2])), door=_u(rng, 0.4, 0.6))
    top = lay.material(
        SPECKLE if rng.random() < 0.6 else PLAIN,
        _choose(rng, _STONES),
        _choose(rng, _STONES),
        scale=0.03,
        variant=1,
        gloss=0.5,
    )
    piece = _Piece(length, 0.62)
    piece.add(
        0.0, 0, 0.0, length, 0.1, 0.52, FURNITURE, lay.material(PLAIN, _choose(rng, _PAINTED[1:3]), scale=0.3)
    )
    piece.add(0.0, 0.1, 0.0, length, 0.87, 0.58, FURNITURE, body)
    piece.add(0.0, 0.87, 0.0, length, 0.91, 0.62, FURNITURE, top)
    piece.surface(0.04, length - 0.04, 0.06, 0.56, 0.91)
    return piece


def _screen(lay: _Layout, width: float, stand: bool) -> _Piece:
    """A TV or monitor (class tv), on a stand or flat for wall mounting."""
    rng = lay.rng
    height = width * _u(rng, 0.55, 0.62)
    on = rng.random() < 0.35
    mat = lay.material(
        SCREEN,
        (0.05, 0.05, 0.06),
        _choose(rng, _METALS[1:]),
        _choose(rng, _BRIGHT),
        scale=0.02,
        variant=int(on),
        gloss=0.6,
    )
    plastic = lay.material(PLAIN, _choose(rng, _METALS[1:]), scale=0.3, gloss=0.3)
    depth = 0.22 if stand else 0.06
    piece = _Piece(width, depth)
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


def _small_object(lay: _Layout, room_w: float, room_d: float, room_h: float = 0.6) -> _Piece:
    """A random small item (class objects unless a book stack) fitting in ``room_w`` x ``room_d``."""
    rng = lay.rng
    kind = rng.choice(
        ["box", "bottle", "lamp", "books", "plant", "flat"], p=[0.3, 0.2, 0.12, 0.13, 0.13, 0.12]
    )
    if kind == "bottle":
        side = _u(rng, 0.05, 0.1)
        piece = _Piece(side, side)
        piece.add(0, 0, 0, side, min(room_h, _u(rng, 0.12, 0.35)), side, OBJECTS, lay.object_material())
    elif kind == "lamp" and room_w > 0.3 and room_d > 0.3 and room_h >= 0.5:
        shade = _u(rng, 0.22, 0.32)
        piece = _Piece(shade, shade)
        mid = shade / 2
        base = lay.object_material()
        piece.add(mid - 0.06, 0, mid - 0.06, mid + 0.06, 0.04, mid + 0.06, OBJECTS, base)
        piece.add(mid - 0.012, 0.04, mid - 0.012, mid + 0.012, 0.3, mid + 0.012, OBJECTS, base)
        piece.add(
            0,
            0.26,
            0,
            shade,
            0.26 + _u(rng, 0.15, 0.22),
            shade,
            OBJECTS,
            lay.fabric(_FABRIC_WARM[:1] + _FABRIC_WARM[4:]),
        )
    elif kind == "books":
        width, depth = _u(rng, 0.15, 0.24), _u(rng, 0.2, 0.3)
        piece = _Piece(width, depth)
        y = 0.0
        for _ in range(int(rng.integers(1, 5))):
            h = _u(rng, 0.02, 0.05)
            du, dw = _u(rng, 0.0, 0.02), _u(rng, 0.0, 0.02)
            piece.add(
                du,
                y,
                dw,
                width - 0.02 + du,
                y + h,
                depth - 0.02 + dw,
                BOOKS,
                lay.material(PLAIN, _choose(rng, _BRIGHT + _FABRIC_COOL, 0.1), scale=0.3),
            )
            y += h
    elif kind == "plant":
        pot = min(_u(rng, 0.1, 0.2), room_h * 0.4)
        leaves = pot * _u(rng, 1.3, 2.0)
        piece = _Piece(leaves, leaves)
        off = (leaves - pot) / 2
        piece.add(off, 0, off, off + pot, pot, off + pot, OBJECTS, lay.object_material())
        green = _jitter(rng, (0.22, 0.45, 0.18), 0.06)
        foliage = lay.material(SPECKLE, green, _darker(green, 0.45), scale=0.02, variant=0)
        piece.add(0, pot, 0, leaves, pot + min(_u(rng, 0.15, 0.45), room_h - pot), leaves, OBJECTS, foliage)
    elif kind == "flat":
        width, depth = _u(rng, 0.2, 0.45), _u(rng, 0.15, 0.32)
        piece = _Piece(width, depth)
        piece.add(0, 0, 0, width, _u(rng, 0.01, 0.04), depth, OBJECTS, lay.object_material())
    else:
        width, depth = _u(rng, 0.08, 0.3), _u(rng, 0.08, 0.3)
        piece = _Piece(width, depth)
        piece.add(0, 0, 0, width, min(room_h, _u(rng, 0.05, 0.3)), depth, OBJECTS, lay.object_material())
    return piece


def _place_small_objects(
    lay: _Layout, count: int, surfaces: Sequence[_Surface] | None = None, max_height: float = 0.5
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
            fx, fz = _footprint_size(piece, rot)
            if fx > x1 - x0 or fz > z1 - z0:
                continue
            cx, cz = _u(rng, x0 + fx / 2, x1 - fx / 2), _u(rng, z0 + fz / 2, z1 - fz / 2)
            if lay.put_on(surface, piece, rot, cx, cz):
                break


def _floor_items(lay: _Layout, count: int) -> None:
    """Plants, boxes and bins standing on the floor near the walls."""
    for _ in range(count):
        piece = _small_object(lay, 0.5, 0.5, 0.9)
        if lay.place_on_wall(piece, tries=8, target=0.0) is None:
            lay.place_free(piece, tries=4, target=0.0, margin=0.5)


# ----------------------------------------------------------------------------------------------
# Wall items: windows (with curtains), pictures, mirrors, towels
# ----------------------------------------------------------------------------------------------


def _add_window(lay: _Layout, bottom_range: tuple[float, float], width_range: tuple[float, float]) -> None:
    rng = lay.rng
    bottom = _u(rng, *bottom_range)
    top = min(lay.height - 0.2, bottom + _u(rng, 0.9, 1.5))
    width = _u(rng, *width_range)
    frame = _choose(rng, [(0.95, 0.95, 0.94), (0.55, 0.38, 0.25), (0.25, 0.25, 0.26)], 0.03)
    sky = _choose(rng, [(0.75, 0.86, 0.98), (0.88, 0.9, 0.92), (0.95, 0.88, 0.75)], 0.04)
    outdoor = _choose(rng, [(0.35, 0.55, 0.30), (0.60, 0.58, 0.55), (0.45, 0.50, 0.40)], 0.05)
    mat = lay.material(
        WINDOW_VIEW, sky, frame, outdoor, scale=_u(rng, 0.04, 0.07), variant=int(rng.integers(3))
    )
    window = _Piece(width, 0.17)
    window.add(0, 0, 0, width, top - bottom, 0.17, WINDOW, mat)
    curtains = rng.random() < 0.45
    if not curtains:
        lay.mount_on_wall(window, bottom, inset=0.15)
        return
    # window and curtains as one piece: curtains hang from above the window to the floor
    drape = _u(rng, 0.25, 0.45)
    total = _Piece(width + 2 * drape, 0.25)
    length = top + 0.1 if rng.random() < 0.6 else top - bottom + 0.25
    cloth = lay.fabric()
    total.add(drape, bottom, 0, drape + width, top, 0.17, WINDOW, mat)
    for u0 in (0.0, width + drape):
        total.add(u0, top + 0.1 - length, 0.17, u0 + drape, top + 0.1, 0.23, WINDOW, cloth)
    low = top + 0.1 - length
    total.boxes = [(u0, v0 - low, w0, u1, v1 - low, w1, c, m) for u0, v0, w0, u1, v1, w1, c, m in total.boxes]
    lay.mount_on_wall(total, low, inset=0.15)


def _add_door(lay: _Layout, trim: int) -> None:
    """A door leaf in a casing (class wall, as in the NYUv2 13-class mapping) with free floor before it."""
    rng = lay.rng
    width, height = _u(rng, 0.8, 0.95), min(lay.height - 0.12, _u(rng, 2.0, 2.15))
    leaf = lay.cabinet(_choose(rng, _PAINTED[:1] + _WOODS + _PAINTED[2:3], 0.03), variant=4, door=width)
    piece = _Piece(width + 0.14, 0.035)
    piece.add(0, 0, 0, width + 0.14, height + 0.07, 0.015, WALL, trim)
    piece.add(0.07, 0, 0, 0.07 + width, height, 0.035, WALL, leaf)
    spot = lay.mount_on_wall(piece, 0.0, tries=10)
    if spot is not None:
        wall, centre = spot
        lay.keepouts.append(lay.wall_rect(wall, centre - width / 2, centre + width / 2, 0.8))


def _wall_shelf(lay: _Layout, books_p: float) -> None:
    rng = lay.rng
    width, depth = _u(rng, 0.6, 1.2), _u(rng, 0.18, 0.26)
    piece = _Piece(width, depth)
    piece.add(0, 0, 0, width, 0.025, depth, FURNITURE, lay.wood(painted_p=0.5))
    books = lay.material(
        BOOK_SPINES, (0.9, 0.87, 0.78), scale=_u(rng, 0.025, 0.045), variant=int(rng.integers(2))
    )
    _fill_shelf(lay, piece, 0.02, width - 0.02, 0.025, _u(rng, 0.2, 0.3), depth, books, books_p)
    lay.mount_on_wall(piece, _u(rng, 1.1, 1.6), tries=10)


def _floor_lamp(lay: _Layout) -> None:
    rng = lay.rng
    shade, top = _u(rng, 0.3, 0.42), _u(rng, 1.4, 1.75)
    piece = _Piece(shade, shade)
    metal = lay.material(PLAIN, _choose(rng, _METALS), scale=0.3, gloss=0.5)
    mid = shade / 2
    piece.add(mid - 0.14, 0, mid - 0.14, mid + 0.14, 0.03, mid + 0.14, OBJECTS, metal)
    piece.add(mid - 0.015, 0.03, mid - 0.015, mid + 0.015, top - 0.2, mid + 0.015, OBJECTS, metal)
    piece.add(0, top - 0.28, 0, shade, top, shade, OBJECTS, lay.fabric(_FABRIC_WARM[:1] + _FABRIC_WARM[4:]))
    lay.place_on_wall(piece, tries=10, target=0.3)


def _add_picture(lay: _Layout, walls: Sequence[int] | None = None) -> None:
    rng = lay.rng
    width = _u(rng, 0.3, 1.2)
    height = min(1.0, width * _u(rng, 0.6, 1.4))
    frame = _choose(rng, [(0.1, 0.1, 0.1), (0.9, 0.9, 0.88), (0.55, 0.38, 0.22), (0.75, 0.6, 0.3)], 0.03)
    mat = lay.material(
        PAINTING,
        _choose(rng, _BRIGHT + _ALL_FABRICS, 0.1),
        frame,
        _choose(rng, _BRIGHT + _WALLS_COOL, 0.1),
        scale=_u(rng, 0.02, 0.06),
        variant=int(rng.integers(3)),
    )
    piece = _Piece(width, _u(rng, 0.02, 0.04))
    piece.add(0, 0, 0, width, height, piece.depth, PICTURE, mat)
    centre = _u(rng, 1.35, 1.75)
    lay.mount_on_wall(piece, min(centre - height / 2, lay.height - 0.15 - height), walls=walls, tries=15)


def _add_flat_on_wall(
    lay: _Layout,
    cls: int,
    mat: int,
    width: float,
    height: float,
    bottom: float,
    depth: float = 0.03,
    walls: Sequence[int] | None = None,
    along: float | None = None,
) -> None:
    piece = _Piece(width, depth)
    piece.add(0, 0, 0, width, height, depth, cls, mat)
    lay.mount_on_wall(piece, bottom, walls=walls, along=along, tries=15 if along is None else 1)


# ----------------------------------------------------------------------------------------------
# Scene recipes
# ----------------------------------------------------------------------------------------------


def _bedroom(lay: _Layout) -> None:
    rng = lay.rng
    if rng.random() < 0.95:
        bed = _bed(lay)
        spot = lay.place_on_wall(bed, target=3.0)
        if spot is not None:
            _nightstands(lay, bed, *spot)
            if rng.random() < 0.6:
                _add_picture(lay, walls=[spot[0]])
    if rng.random() < 0.7:
        wardrobe = _cabinet(lay, _u(rng, 0.9, 2.0), _u(rng, 0.55, 0.65), _u(rng, 1.8, 2.3), variant=0)
        lay.place_on_wall(wardrobe)
    if rng.random() < 0.6:
        dresser = _cabinet(lay, _u(rng, 0.8, 1.5), _u(rng, 0.4, 0.5), _u(rng, 0.7, 1.0), variant=1)
        if lay.place_on_wall(dresser) and rng.random() < 0.2:
            _tv_on(lay, lay.surfaces[-1], 0.5, 0.8)
    if rng.random() < 0.3:
        _desk_with_chair(lay)
    if rng.random() < 0.3:
        lay.place_on_wall(_chair(lay) if rng.random() < 0.6 else _sofa(lay, 1), target=0.5)
    if rng.random() < 0.2:
        lay.place_on_wall(_bookshelf(lay, _u(rng, 0.6, 1.0), _u(rng, 0.28, 0.36), _u(rng, 0.8, 1.9)))
    if rng.random() < 0.2:
        _wall_shelf(lay, books_p=0.6)
    if rng.random() < 0.25:
        _floor_lamp(lay)
    _place_small_objects(lay, int(rng.integers(2, 8)))
    _floor_items(lay, int(rng.integers(1, 4)))
    for _ in range(int(rng.integers(0, 3))):
        _add_picture(lay)


def _nightstands(lay: _Layout, bed: _Piece, wall: int, along: float) -> None:
    rng = lay.rng
    width, depth, height = _u(rng, 0.4, 0.55), _u(rng, 0.35, 0.45), _u(rng, 0.45, 0.6)
    mat = lay.cabinet(variant=1, door=0.18)
    for side in (-1, 1):
        if rng.random() < 0.8:
            stand = _cabinet(lay, width, depth, height, variant=1, body=mat)
            cx, cz = lay.wall_point(
                wall, along + side * (bed.width / 2 + width / 2 + 0.04), depth / 2 + 0.005
            )
            if lay.try_add(stand, wall, cx, cz) and rng.random() < 0.6:
                _place_small_objects(lay, 1, [lay.surfaces[-1]], max_height=0.5)


def _tv_on(lay: _Layout, surface: _Surface, low: float, high: float) -> None:
    x0, x1, z0, z1 = surface.rect
    along = max(x1 - x0, z1 - z0)
    width = min(along - 0.05, _u(lay.rng, low, high))
    if width < 0.35:
        return
    piece = _screen(lay, width, stand=True)
    rot = _facing_rot(lay, surface)
    fx, fz = _footprint_size(piece, rot)
    if fx > x1 - x0 + 1e-6 or fz > z1 - z0 + 1e-6:
        return
    cx, cz = (x0 + x1) / 2, (z0 + z1) / 2
    if lay.put_on(surface, piece, rot, cx, cz):
        lay.targets.append((cx, surface.height + 0.3, cz, 1.0))


def _facing_rot(lay: _Layout, surface: _Surface) -> int:
    """Rotation facing away from the wall nearest to ``surface`` (towards the room)."""
    x0, x1, z0, z1 = surface.rect
    gaps = (z0, lay.width - x1, lay.depth - z1, x0)
    return int(np.argmin(gaps))


def _desk_with_chair(lay: _Layout, monitor_p: float = 0.3) -> None:
    rng = lay.rng
    desk = _table(lay, _u(rng, 1.0, 1.7), _u(rng, 0.6, 0.75), _u(rng, 0.72, 0.76))
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
    _place_small_objects(lay, int(rng.integers(1, 4)), [surface], max_height=0.35)
    if rng.random() < 0.9:
        chair = _chair(lay, office=rng.random() < 0.6)
        dist = desk.depth + _u(rng, -0.15, 0.3)
        cx, cz = lay.wall_point(
            wall, along + _u(rng, -0.2, 0.2), max(desk.depth + 0.03, dist) + chair.depth / 2
        )
        lay.try_add(chair, (wall + 2) % 4, cx, cz, margin=0.02)


def _kitchen(lay: _Layout) -> None:
    rng = lay.rng
    walls = [int(w) for w in rng.permutation(4)[: int(rng.choice([1, 2, 2, 3]))]]
    for wall in walls:
        length = min(lay.wall_length(wall) - 0.1, _u(rng, 1.4, 4.0))
        spot = None
        for shrink in (1.0, 0.7, 0.45):  # shorter runs fit between doors and windows
            spot = lay.place_on_wall(_counter(lay, length * shrink), walls=[wall], tries=6, target=2.0)
            if spot is not None:
                length *= shrink
                break
        if spot is None:
            continue
        if rng.random() < 0.65:
            upper = _cabinet(lay, length, 0.35, _u(rng, 0.6, 0.8), variant=0)
            upper.surfaces.clear()
            upper.boxes = upper.boxes[1:]
            lay.mount_on_wall(upper, _u(rng, 1.45, 1.55), walls=[wall], along=spot[1], tries=1)
        if rng.random() < 0.6:
            tiles = lay.material(
                TILES,
                _choose(rng, _TILES_LIGHT + _TILES_DARK[:2]),
                (0.8, 0.8, 0.78),
                _choose(rng, _TILES_LIGHT),
                scale=_u(rng, 0.08, 0.2),
                variant=1,
                gloss=0.4,
            )
            _add_flat_on_wall(lay, WALL, tiles, length, 0.5, 0.915, depth=0.006, walls=[wall], along=spot[1])
    counters = list(lay.surfaces)
    for surface in counters:
        if rng.random() < 0.6:  # sink or hob, flush on the counter
            _place_fixture(lay, surface)
    if rng.random() < 0.7:
        fridge = _cabinet(
            lay,
            _u(rng, 0.6, 0.8),
            _u(rng, 0.62, 0.7),
            _u(rng, 1.7, 1.95),
            variant=3,
            body=lay.cabinet(_choose(rng, _METALS[:1] + _PAINTED[:1]), variant=3, gloss=0.5),
        )
        fridge.surfaces.clear()
        lay.place_on_wall(fridge, target=0.5)
    if rng.random() < 0.6:
        _table_with_chairs(lay, (0.8, 1.4), (0.7, 0.9), (1, 4))
    if rng.random() < 0.25:
        lay.place_on_wall(_bookshelf(lay, _u(rng, 0.6, 1.0), 0.3, _u(rng, 0.8, 1.8), books_p=0.25))
    if rng.random() < 0.2:
        _wall_shelf(lay, books_p=0.2)
    _place_small_objects(lay, int(rng.integers(3, 10)), max_height=0.4)
    _floor_items(lay, int(rng.integers(0, 2)))
    if rng.random() < 0.2:
        _add_picture(lay)
    if rng.random() < 0.1:
        _add_flat_on_wall(
            lay,
            TV,
            lay.material(SCREEN, (0.05, 0.05, 0.06), (0.2, 0.2, 0.2), (0.3, 0.5, 0.8), scale=0.02, gloss=0.6),
            0.6,
            0.36,
            1.5,
            depth=0.05,
        )


def _place_fixture(lay: _Layout, surface: _Surface) -> None:
    rng = lay.rng
    x0, x1, z0, z1 = surface.rect
    sink = rng.random() < 0.5
    color = _choose(rng, _METALS) if sink else (0.08, 0.08, 0.09)
    mat = lay.material(PLAIN, color, scale=0.2, gloss=0.7)
    piece = _Piece(_u(rng, 0.5, 0.7), 0.45)
    piece.add(0, 0, 0, piece.width, 0.015, 0.45, OBJECTS, mat)
    if sink:
        piece.add(piece.width / 2 - 0.02, 0.0, 0.0, piece.width / 2 + 0.02, 0.25, 0.05, OBJECTS, mat)
    rot = _facing_rot(lay, surface)
    fx, fz = _footprint_size(piece, rot)
    if fx > x1 - x0 or fz > z1 - z0:
        return
    cx, cz = _u(rng, x0 + fx / 2, x1 - fx / 2), _u(rng, z0 + fz / 2, z1 - fz / 2)
    lay.put_on(surface, piece, rot, cx, cz)


def _table_with_chairs(
    lay: _Layout,
    length: tuple[float, float],
    width: tuple[float, float],
    chairs: tuple[int, int],
    height: float = 0.75,
) -> None:
    rng = lay.rng
    table = _table(lay, _u(rng, *length), _u(rng, *width), height + _u(rng, -0.03, 0.02))
    spot = lay.place_free(table, margin=0.65, target=3.0)
    if spot is None:
        spot = lay.place_free(table, margin=0.2, target=3.0)
        if spot is None:
            return
    rot, cx, cz = spot
    surface = lay.surfaces[-1]
    fx, fz = _footprint_size(table, rot)
    chair_mat = lay.wood(painted_p=0.4)
    seats = [(side, offset) for side in range(4) for offset in _seat_offsets(fx if side % 2 == 0 else fz)]
    rng.shuffle(seats)
    wanted = int(rng.integers(chairs[0], chairs[1] + 1))
    placed = 0
    for side, offset in seats:
        if placed >= wanted:
            break
        chair = _chair(lay, chair_mat)
        pull = _u(rng, 0.03, 0.3)
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
    _place_small_objects(lay, int(rng.integers(0, 4)), [surface], max_height=0.35)


def _seat_offsets(side_length: float) -> list[float]:
    count = max(1, int(side_length / 0.6))
    step = side_length / count
    return [-side_length / 2 + step * (i + 0.5) for i in range(count)]


def _living_room(lay: _Layout) -> None:
    rng = lay.rng
    sofa_spot = None
    if rng.random() < 0.9:
        sofa = _sofa(lay, int(rng.integers(2, 4)))
        sofa_spot = lay.place_on_wall(sofa, target=3.0)
        if sofa_spot is not None and rng.random() < 0.8:
            wall, along = sofa_spot
            table = _table(lay, _u(rng, 0.8, 1.3), _u(rng, 0.5, 0.7), _u(rng, 0.38, 0.46))
            cx, cz = lay.wall_point(wall, along, sofa.depth + _u(rng, 0.35, 0.55) + table.depth / 2)
            if lay.try_add(table, wall, cx, cz, target=1.0):
                _place_small_objects(lay, int(rng.integers(0, 3)), [lay.surfaces[-1]], max_height=0.3)
        if sofa_spot is not None and rng.random() < 0.4:
            _add_picture(lay, walls=[sofa_spot[0]])
    if rng.random() < 0.4:
        lay.place_on_wall(_sofa(lay, 1), target=1.0)
    if rng.random() < 0.75:
        opposite = [(sofa_spot[0] + 2) % 4] if sofa_spot is not None and rng.random() < 0.7 else None
        stand = _cabinet(
            lay, _u(rng, 1.0, 1.8), _u(rng, 0.4, 0.5), _u(rng, 0.45, 0.6), variant=int(rng.integers(2))
        )
        if lay.place_on_wall(stand, walls=opposite, target=2.0) and rng.random() < 0.9:
            _tv_on(lay, lay.surfaces[-1], 0.8, 1.4)
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        lay.place_on_wall(_bookshelf(lay, _u(rng, 0.7, 1.4), _u(rng, 0.28, 0.4), _u(rng, 1.2, 2.2)))
    if rng.random() < 0.2:
        lay.place_on_wall(_chair(lay), target=0.5)
    if rng.random() < 0.4:
        side = _table(lay, _u(rng, 0.4, 0.6), _u(rng, 0.4, 0.6), _u(rng, 0.5, 0.65))
        lay.place_on_wall(side, target=0.3)
    if rng.random() < 0.3:
        _wall_shelf(lay, books_p=0.6)
    if rng.random() < 0.45:
        _floor_lamp(lay)
    _place_small_objects(lay, int(rng.integers(2, 7)))
    _floor_items(lay, int(rng.integers(0, 4)))
    for _ in range(int(rng.integers(0, 4))):
        _add_picture(lay)


def _office(lay: _Layout) -> None:
    rng = lay.rng
    for _ in range(int(rng.choice([1, 1, 2, 3]))):
        _desk_with_chair(lay, monitor_p=0.8)
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        lay.place_on_wall(
            _bookshelf(lay, _u(rng, 0.7, 1.5), _u(rng, 0.28, 0.4), _u(rng, 1.0, 2.2), books_p=0.85)
        )
    if rng.random() < 0.6:
        for _ in range(int(rng.integers(1, 3))):
            lay.place_on_wall(
                _cabinet(lay, _u(rng, 0.4, 0.9), _u(rng, 0.45, 0.6), _u(rng, 0.7, 1.3), variant=1)
            )
    if rng.random() < 0.2:
        _table_with_chairs(lay, (1.2, 2.0), (0.8, 1.0), (2, 5))
    if rng.random() < 0.1:
        lay.place_on_wall(_sofa(lay, 2), target=1.0)
    if rng.random() < 0.35:
        _wall_shelf(lay, books_p=0.85)
    _place_small_objects(lay, int(rng.integers(2, 7)), max_height=0.35)
    _floor_items(lay, int(rng.integers(0, 3)))
    for _ in range(int(rng.random() < 0.4) + int(rng.random() < 0.15)):
        _add_picture(lay)
    if rng.random() < 0.15:
        _add_flat_on_wall(
            lay,
            TV,
            lay.material(SCREEN, (0.05, 0.05, 0.06), (0.2, 0.2, 0.2), (0.9, 0.9, 0.9), scale=0.02, variant=1),
            1.2,
            0.75,
            1.1,
            depth=0.05,
        )


def _bathroom(lay: _Layout) -> None:
    rng = lay.rng
    white = lay.material(
        PLAIN, _choose(rng, [(0.95, 0.95, 0.94), (0.9, 0.92, 0.93)], 0.02), scale=0.3, gloss=0.7
    )
    if rng.random() < 0.9:
        _vanity(lay, white)
    if rng.random() < 0.85:
        toilet = _Piece(0.4, 0.7)
        toilet.add(0.06, 0, 0.18, 0.34, 0.4, 0.62, OBJECTS, white)
        toilet.add(0.02, 0.4, 0.15, 0.38, 0.44, 0.69, OBJECTS, white)
        toilet.add(0.0, 0.3, 0.0, 0.4, 0.8, 0.2, OBJECTS, white)
        lay.place_on_wall(toilet, target=1.5)
    if rng.random() < 0.5:
        lay.place_on_wall(_bathtub(lay, white), target=1.5)
    if rng.random() < 0.3:
        lay.place_on_wall(_cabinet(lay, _u(rng, 0.4, 0.7), _u(rng, 0.3, 0.4), _u(rng, 1.2, 1.9), variant=0))
    if rng.random() < 0.2:
        lay.place_on_wall(_bookshelf(lay, _u(rng, 0.4, 0.7), 0.25, _u(rng, 0.8, 1.6), books_p=0.05))
    for _ in range(int(rng.integers(1, 4))):
        towel = lay.fabric(_FABRIC_WARM + _FABRIC_COOL + _BRIGHT[:3])
        _add_flat_on_wall(
            lay, OBJECTS, towel, _u(rng, 0.3, 0.5), _u(rng, 0.4, 0.7), _u(rng, 0.8, 1.1), depth=0.05
        )
    if rng.random() < 0.05:
        lay.place_on_wall(_chair(lay), tries=5)
    if rng.random() < 0.4:
        _wall_shelf(lay, books_p=0.0)
    if rng.random() < 0.5:
        mat = lay.fabric(_FABRIC_WARM + _FABRIC_COOL + _BRIGHT[:3])
        rug = _Piece(_u(rng, 0.5, 0.8), _u(rng, 0.4, 0.55))
        rug.add(0, 0, 0, rug.width, 0.012, rug.depth, FLOOR, mat)
        lay.place_free(rug, tries=8, target=0.0, margin=0.1)
    _floor_items(lay, int(rng.integers(0, 3)))
    _place_small_objects(lay, int(rng.integers(2, 7)), max_height=0.3)
    if rng.random() < 0.2:
        _add_picture(lay)


def _vanity(lay: _Layout, white: int) -> None:
    """Washstand (furniture) with a basin (objects), toiletries and a mirror (objects) above it."""
    rng = lay.rng
    vanity = _cabinet(
        lay, _u(rng, 0.6, 1.2), _u(rng, 0.45, 0.52), _u(rng, 0.78, 0.86), variant=int(rng.integers(3))
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
    mirror = lay.material(PLAIN, _jitter(rng, (0.7, 0.78, 0.82), 0.03), scale=0.5, variant=2, gloss=0.9)
    height = _u(rng, 0.6, 0.9)
    _add_flat_on_wall(
        lay, OBJECTS, mirror, vanity.width * 0.85, height, 1.15, depth=0.02, walls=[wall], along=along
    )


def _bathtub(lay: _Layout, white: int) -> _Piece:
    rng = lay.rng
    tub = _Piece(_u(rng, 1.5, 1.75), _u(rng, 0.7, 0.78))
    rim, height = 0.07, _u(rng, 0.5, 0.58)
    w, d = tub.width, tub.depth
    tub.add(0, 0, 0, w, height, rim, OBJECTS, white)
    tub.add(0, 0, d - rim, w, height, d, OBJECTS, white)
    tub.add(0, 0, rim, rim, height, d - rim, OBJECTS, white)
    tub.add(w - rim, 0, rim, w, height, d - rim, OBJECTS, white)
    tub.add(rim, 0, rim, w - rim, 0.15, d - rim, OBJECTS, white)
    return tub


def _dining_room(lay: _Layout) -> None:
    rng = lay.rng
    if rng.random() < 0.95:
        _table_with_chairs(lay, (1.3, 2.3), (0.8, 1.05), (3, 8))
    if rng.random() < 0.7:
        sideboard = _cabinet(
            lay, _u(rng, 1.0, 2.0), _u(rng, 0.42, 0.5), _u(rng, 0.75, 0.95), variant=int(rng.integers(3))
        )
        lay.place_on_wall(sideboard, target=1.0)
    if rng.random() < 0.25:
        lay.place_on_wall(_bookshelf(lay, _u(rng, 0.7, 1.2), 0.35, _u(rng, 1.2, 2.0), books_p=0.6))
    if rng.random() < 0.3:
        lay.place_on_wall(_cabinet(lay, _u(rng, 0.8, 1.4), 0.45, _u(rng, 1.6, 2.0), variant=0))
    if rng.random() < 0.1:
        lay.place_on_wall(_sofa(lay, 2), target=0.5)
    if rng.random() < 0.1:
        _add_flat_on_wall(
            lay,
            TV,
            lay.material(SCREEN, (0.05, 0.05, 0.06), (0.2, 0.2, 0.2), (0.3, 0.5, 0.8), scale=0.02, gloss=0.6),
            1.0,
            0.58,
            1.1,
            depth=0.05,
        )
    if rng.random() < 0.2:
        _floor_lamp(lay)
    _place_small_objects(lay, int(rng.integers(2, 7)), max_height=0.4)
    _floor_items(lay, int(rng.integers(0, 3)))
    for _ in range(int(rng.integers(1, 4))):
        _add_picture(lay)


def _furnish_sparse_room(lay: _Layout, minimum: int = 3) -> None:
    """Top up a room whose recipe placed fewer than ``minimum`` floor pieces with storage or seating."""
    rng = lay.rng
    for _ in range(8):
        if sum(top > 0 for _, top in lay.footprints) >= minimum:
            return
        choice = rng.random()
        if choice < 0.5:
            piece = _cabinet(
                lay, _u(rng, 0.5, 1.4), _u(rng, 0.35, 0.55), _u(rng, 0.5, 1.9), int(rng.integers(3))
            )
        elif choice < 0.75:
            books = 0.1 if SCENE_TYPES[lay.scene] in ("bathroom", "kitchen") else 0.7
            piece = _bookshelf(lay, _u(rng, 0.5, 1.1), _u(rng, 0.28, 0.38), _u(rng, 0.8, 2.0), books_p=books)
        else:
            piece = _chair(lay)
        if lay.place_on_wall(piece, tries=10, target=0.5) and piece.surfaces:
            _place_small_objects(lay, int(rng.integers(0, 3)), [lay.surfaces[-1]])


_RECIPES: dict[str, Callable[[_Layout], None]] = {
    "bedroom": _bedroom,
    "kitchen": _kitchen,
    "living_room": _living_room,
    "office": _office,
    "bathroom": _bathroom,
    "dining_room": _dining_room,
}


# ----------------------------------------------------------------------------------------------
# Room surfaces, light and camera
# ----------------------------------------------------------------------------------------------


def _room_materials(lay: _Layout) -> tuple[dict[str, int], tuple[int, int, int, int], float, float]:
    rng = lay.rng
    style = lay.style
    wall_color = _choose(rng, lay.colors("wall"), 0.03)
    if rng.random() < 0.15:
        wall = lay.material(
            STRIPES,
            wall_color,
            _jitter(rng, wall_color, 0.08),
            scale=_u(rng, 0.08, 0.3),
            variant=int(rng.integers(2)),
        )
    else:
        wall = lay.material(PLAIN, wall_color, scale=0.6, variant=0)
    walls = [wall] * 4
    if rng.random() < 0.2:
        walls[int(rng.integers(4))] = lay.material(
            PLAIN, _choose(rng, _WALLS_BOLD + _ALL_WALLS, 0.03), scale=0.6
        )
    floor_kinds = list(style.floors)
    kind = floor_kinds[int(rng.choice(len(floor_kinds), p=list(style.floors.values())))]
    floor = _floor_material(lay, kind)
    ceiling = lay.material(PLAIN, _jitter(rng, (0.94, 0.94, 0.92), 0.015), scale=0.8)
    dado_height = 0.0
    mats = {"floor": floor, "ceiling": ceiling, "dado": wall}
    if rng.random() < style.wall_tiles:
        tile = _choose(rng, _TILES_LIGHT + _TILES_DARK[2:], 0.03)
        mats["dado"] = lay.material(
            TILES,
            tile,
            (0.85, 0.85, 0.83),
            tile,
            scale=_u(rng, 0.1, 0.3),
            variant=int(rng.integers(2)),
            gloss=0.5,
        )
        dado_height = _u(rng, 1.0, 1.5) if rng.random() < 0.6 else lay.height
    trim = _choose(rng, [(0.95, 0.95, 0.94), (0.5, 0.35, 0.22), wall_color], 0.02)
    mats["trim"] = lay.material(PLAIN, trim, scale=0.3, gloss=0.2)
    baseboard = 0.0 if dado_height > 0 or rng.random() < 0.2 else _u(rng, 0.05, 0.12)
    return mats, (walls[0], walls[1], walls[2], walls[3]), dado_height, baseboard


def _floor_material(lay: _Layout, kind: str) -> int:
    rng = lay.rng
    if kind == "wood":
        base = _choose(rng, _WOODS)
        return lay.material(
            WOOD,
            base,
            _darker(base, 0.72),
            scale=_u(rng, 0.025, 0.05),
            variant=int(rng.integers(10, 22)),
            gloss=0.2,
        )
    if kind == "carpet":
        base = _choose(rng, _CARPETS)
        return lay.material(SPECKLE, base, _jitter(rng, base, 0.1), scale=_u(rng, 0.01, 0.03), variant=1)
    if kind == "checker":
        dark, light = _choose(rng, _TILES_DARK, 0.03), _choose(rng, _TILES_LIGHT, 0.03)
        return lay.material(TILES, light, (0.6, 0.6, 0.58), dark, scale=_u(rng, 0.2, 0.4), gloss=0.4)
    tile = _choose(rng, _TILES_LIGHT + _TILES_DARK, 0.04)
    return lay.material(
        TILES, tile, _jitter(rng, (0.6, 0.6, 0.58), 0.05), tile, scale=_u(rng, 0.25, 0.6), gloss=0.3
    )


def _add_rug(lay: _Layout) -> None:
    rng = lay.rng
    width, depth = _u(rng, 1.2, min(3.0, lay.width - 0.6)), _u(rng, 0.8, min(2.2, lay.depth - 0.6))
    if width < 1.0 or depth < 0.7:
        return
    x0, z0 = _u(rng, 0.3, lay.width - width - 0.3), _u(rng, 0.3, lay.depth - depth - 0.3)
    base = _choose(rng, _ALL_FABRICS + _CARPETS)
    mat = lay.material(
        FABRIC,
        base,
        _choose(rng, _BRIGHT + _ALL_FABRICS),
        scale=_u(rng, 0.1, 0.3),
        variant=int(rng.integers(3)),
    )
    lay.add_box((x0, 0.0, z0), (x0 + width, 0.012, z0 + depth), FLOOR, mat, 3, lay.new_group())


def _ceiling_lamp(lay: _Layout) -> tuple[float, float, float]:
    """Add the lamp (class objects, emissive, casts no shadow) and return the light position."""
    rng = lay.rng
    x, z = lay.width * _u(rng, 0.35, 0.65), lay.depth * _u(rng, 0.35, 0.65)
    for surface in lay.surfaces:
        if surface.height > 0.6 and surface.height < 0.8 and rng.random() < 0.5:  # over a table
            x0, x1, z0, z1 = surface.rect
            x, z = (x0 + x1) / 2, (z0 + z1) / 2
            break
    size, drop = _u(rng, 0.25, 0.5), _u(rng, 0.06, 0.3)
    glow = lay.material(LAMP, _jitter(rng, (1.0, 0.93, 0.8), 0.03))
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


def _camera(lay: _Layout, room: RoomScene, candidates: int = 8) -> tuple[np.ndarray, np.ndarray, float]:
    """The best of a few random free viewpoints aimed at furniture, judged by a coarse 12 x 12 view."""
    rng = lay.rng
    targets = lay.targets or [(lay.width / 2, 0.8, lay.depth / 2, 1.0)]
    weights = np.array([t[3] for t in targets])
    best, best_score = None, -np.inf
    for _ in range(60):
        position = np.array(
            [_u(rng, 0.45, lay.width - 0.45), _u(rng, 1.0, 1.8), _u(rng, 0.45, lay.depth - 0.45)]
        )
        if not _camera_spot_free(lay, position):
            continue
        target = np.array(targets[int(rng.choice(len(targets), p=weights / weights.sum()))][:3])
        pose = _aim(rng, position, target)
        score = _view_score(room, *pose) + rng.normal(0.0, 0.4)
        if score > best_score:
            best, best_score = pose, score
        candidates -= 1
        if candidates == 0:
            break
    if best is None:
        best = _aim(rng, np.array([lay.width / 2, 1.4, lay.depth / 2]), np.array([lay.width / 2, 0.5, 0.0]))
    position, rotation, tan_half_fov = best
    return position.astype(np.float32), rotation.astype(np.float32), tan_half_fov


def _camera_spot_free(lay: _Layout, position: np.ndarray, margin: float = 0.35) -> bool:
    return not any(
        x0 - margin < position[0] < x1 + margin and z0 - margin < position[2] < z1 + margin
        for (x0, x1, z0, z1), top in lay.footprints
        if top > 0
    )


def _aim(
    rng: np.random.Generator, position: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    """Camera pose looking roughly at ``target``: yaw jitter, pitch 5-30 degrees down, roll +-3 degrees."""
    delta = target - position
    yaw = math.atan2(delta[0], delta[2]) + rng.normal(0.0, math.radians(10))
    horizontal = math.hypot(delta[0], delta[2])
    pitch = math.atan2(position[1] - target[1], max(horizontal, 0.5)) + rng.normal(0, math.radians(5))
    pitch = float(np.clip(pitch, math.radians(5), math.radians(30)))
    roll = _u(rng, -math.radians(3), math.radians(3))
    hfov = math.radians(_u(rng, 55.0, 70.0))
    return position, _camera_rotation(yaw, pitch, roll), math.tan(hfov / 2)


def _view_score(room: RoomScene, position: np.ndarray, rotation: np.ndarray, tan_half_fov: float) -> float:
    """Favour views with many classes and furniture filling a good part, nothing right at the lens."""
    dirs = _camera_rays(rotation.astype(np.float32), tan_half_fov, 12)
    t, box = _trace(room, position.astype(np.float32), dirs)
    classes = np.where(box >= 0, room.cls[np.maximum(box, 0)], WALL)
    content = np.isin(classes, (WALL, WINDOW, FLOOR), invert=True).mean()
    crowded = float((t < 0.9).mean())
    distance = abs(float(np.median(t)) - 2.8)
    return 0.35 * len(np.unique(classes)) + 4.0 * min(float(content), 0.4) - 6.0 * crowded - 0.8 * distance


def _camera_rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Columns: camera right, down and forward axes in world coordinates (y up)."""
    forward = np.array([math.sin(yaw) * math.cos(pitch), -math.sin(pitch), math.cos(yaw) * math.cos(pitch)])
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c, s = math.cos(roll), math.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    return np.stack([right, down, forward], axis=1)


def scene_type_of(seed: int, index: int) -> int:
    """Scene type of sample ``index``: every aligned block of 6 indices holds each type once."""
    block = np.random.default_rng([seed, index // len(SCENE_TYPES), _SCENE_STREAM])
    return int(block.permutation(len(SCENE_TYPES))[index % len(SCENE_TYPES)])


def build_scene(seed: int, index: int) -> RoomScene:
    """Lay out room ``index`` for ``seed``: a pure function of its arguments (no pixels yet)."""
    scene = scene_type_of(seed, index)
    name = SCENE_TYPES[scene]
    rng = np.random.default_rng([seed, index])
    lay = _Layout(rng, scene)
    room_mats, wall_mats, dado_height, baseboard = _room_materials(lay)
    bathroom = name == "bathroom"
    windows = int(rng.random() < 0.5) if bathroom else int(rng.choice([0, 1, 1, 1, 2]))
    for _ in range(windows):  # kitchen windows sit above the counters
        sill = (1.0, 1.3) if bathroom or name == "kitchen" else (0.8, 1.1)
        _add_window(lay, sill, (0.5, 0.9) if bathroom else (0.8, 1.8))
    if rng.random() < 0.55:
        _add_door(lay, room_mats["trim"])
    _RECIPES[name](lay)
    _furnish_sparse_room(lay)
    if rng.random() < (0.5 if name in ("bedroom", "living_room") else 0.15):
        _add_rug(lay)
    light = _ceiling_lamp(lay)
    room = lay.to_scene(
        room_mats=room_mats,
        wall_mats=wall_mats,
        dado_height=dado_height,
        baseboard=baseboard,
        light=np.array(light, dtype=np.float32),
        ambient=_u(rng, 0.12, 0.3),
        ambient_tint=_jitter(rng, (0.95, 0.97, 1.0), 0.02),
        cam_position=np.zeros(3, np.float32),
        cam_rotation=np.eye(3, dtype=np.float32),
        tan_half_fov=1.0,
        noise_sigma=_u(rng, 1.0, 3.0),
    )
    room.cam_position, room.cam_rotation, room.tan_half_fov = _camera(lay, room)
    return room


# ----------------------------------------------------------------------------------------------
# Ray casting
# ----------------------------------------------------------------------------------------------


def _safe_inverse(dirs: np.ndarray) -> np.ndarray:
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


def _trace(scene: RoomScene, origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of rays from ``origin`` (inside the room): ray parameter and box id (-1 = room)."""
    inv = _safe_inverse(dirs)
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
    inv = _safe_inverse(dirs)
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


def _camera_rays(rotation: np.ndarray, tan_half_fov: float, resolution: int) -> np.ndarray:
    """World ray directions whose camera-frame z component is 1, so the ray parameter is z-depth."""
    focal = (resolution / 2) / tan_half_fov
    coords = (np.arange(resolution, dtype=np.float32) + 0.5 - resolution / 2) / np.float32(focal)
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    cam = np.stack([xs.ravel(), ys.ravel(), np.ones(xs.size, dtype=np.float32)], axis=1)
    return cam @ rotation.T


# ----------------------------------------------------------------------------------------------
# Procedural textures
# ----------------------------------------------------------------------------------------------

_U_AXIS = np.array([2, 0, 0])
_V_AXIS = np.array([1, 2, 1])


def _hash01(ix: np.ndarray, iy: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """Deterministic pseudo-random values in [0, 1) for integer lattice points."""
    h = ix.astype(np.int32).view(np.uint32) * np.uint32(0x9E3779B1)
    h ^= iy.astype(np.int32).view(np.uint32) * np.uint32(0x85EBCA77)
    h ^= salt
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x2C1B3C6D)
    h ^= h >> np.uint32(12)
    h *= np.uint32(0x297A2D39)
    h ^= h >> np.uint32(15)
    return (h >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


def _value_noise(x: np.ndarray, y: np.ndarray, salt: np.ndarray) -> np.ndarray:
    """Smooth value noise in [0, 1]."""
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    sx, sy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    ix, iy = x0.astype(np.int32), y0.astype(np.int32)
    a, b = _hash01(ix, iy, salt), _hash01(ix + 1, iy, salt)
    c, d = _hash01(ix, iy + 1, salt), _hash01(ix + 1, iy + 1, salt)
    return a + (b - a) * sx + (c - a) * sy + (a - b - c + d) * sx * sy


def _fbm(x: np.ndarray, y: np.ndarray, salt: np.ndarray, octaves: int = 2) -> np.ndarray:
    total, weight, norm = np.zeros_like(x), 1.0, 0.0
    for octave in range(octaves):
        total += weight * _value_noise(x * 2**octave, y * 2**octave, salt + np.uint32(octave * 7919))
        norm += weight
        weight *= 0.5
    return total / norm


@dataclass
class _Hits:
    """Hit points of one material kind with the surface coordinates the patterns need."""

    p: np.ndarray
    axis: np.ndarray
    front: np.ndarray  # the face is the front of its box
    u: np.ndarray
    v: np.ndarray
    u0: np.ndarray
    u1: np.ndarray
    v0: np.ndarray
    v1: np.ndarray
    along: np.ndarray  # coordinate along the box's horizontal width (books, cabinets)
    along0: np.ndarray
    along1: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    c3: np.ndarray
    scale: np.ndarray
    variant: np.ndarray
    salt: np.ndarray


def _mix(a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    return a + (b - a) * w[:, None]


def _tex_plain(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    amount = np.where(h.variant == 2, 0.0, 0.1)[:, None]
    noise = _fbm(h.u / h.scale, h.v / h.scale, h.salt + h.axis.astype(np.uint32)) - 0.5
    color = h.c1 * (1 + amount * noise[:, None])
    mirror = h.variant == 2  # mirrors: a vertical sheen instead of noise
    if mirror.any():
        rel = (h.v[mirror] - h.v0[mirror]) / np.maximum(h.v1[mirror] - h.v0[mirror], 1e-3)
        color[mirror] *= (0.8 + 0.35 * rel)[:, None]
    return color, np.zeros(len(h.u), np.float32)


def _tex_wood(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    long_u = (h.u1 - h.u0) >= (h.v1 - h.v0)
    grain, across = np.where(long_u, h.u, h.v), np.where(long_u, h.v, h.u)
    plank = h.variant.astype(np.float32) / 100  # plank width in metres, 0 = solid
    has_planks = plank > 0
    row = np.where(has_planks, np.floor(across / np.where(has_planks, plank, 1)), 0)
    shift = _hash01(row.astype(np.int32), np.zeros_like(row, dtype=np.int32), h.salt) * 3.0
    warp = _value_noise(grain * 0.8 + shift * 5, across * 4.0, h.salt) * 2.5
    rings = 0.5 + 0.5 * np.sin(2 * np.pi * (across / h.scale + warp))
    w = rings**4 * 0.55 + 0.3 * _value_noise(grain * 12, across * 40, h.salt + np.uint32(3))
    color = _mix(h.c1, h.c2, w)
    tint = 0.85 + 0.3 * _hash01(row.astype(np.int32), np.ones_like(row, dtype=np.int32), h.salt)
    color *= np.where(has_planks, tint, 1.0)[:, None]
    seam_across = np.abs(
        across / np.where(has_planks, plank, 1) - np.round(across / np.where(has_planks, plank, 1))
    )
    length = 1.2
    pos = grain / length + shift
    seam_along = np.abs(pos - np.round(pos)) * length
    seam = has_planks & ((seam_across * plank < 0.003) | (seam_along < 0.003))
    color[seam] *= 0.55
    return color, np.zeros(len(h.u), np.float32)


def _tex_tiles(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    width = h.scale * np.where(h.variant == 1, 2.0, 1.0)
    height = h.scale
    iv = np.floor(h.v / height)
    u = h.u + np.where((h.variant == 1) & (iv % 2 == 1), width / 2, 0.0)
    iu = np.floor(u / width)
    fu, fv = u / width - iu, h.v / height - iv
    grout_w = np.float32(0.004)
    grout = (np.minimum(fu, 1 - fu) * width < grout_w) | (np.minimum(fv, 1 - fv) * height < grout_w)
    checker = (iu + iv) % 2 == 1
    base = np.where(checker[:, None], h.c3, h.c1)
    var = 0.92 + 0.12 * _hash01(iu.astype(np.int32), iv.astype(np.int32), h.salt)
    bevel = 1 - 0.12 * np.clip(
        1 - np.minimum(np.minimum(fu, 1 - fu) * width, np.minimum(fv, 1 - fv) * height) / 0.02, 0, 1
    )
    color = base * (var * bevel)[:, None]
    color[grout] = h.c2[grout]
    return color, np.zeros(len(h.u), np.float32)


def _tex_fabric(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    mottle = _fbm(h.u * 6, h.v * 6, h.salt) - 0.5
    weave = _value_noise(h.u * 250, h.v * 250, h.salt + np.uint32(11)) - 0.5
    color = h.c1 * (1 + 0.18 * mottle + 0.08 * weave)[:, None]
    band_u = (np.floor(h.u / h.scale) % 2 == 0) & (np.abs(np.sin(np.pi * h.u / h.scale)) > 0.5)
    band_v = (np.floor(h.v / h.scale) % 2 == 0) & (np.abs(np.sin(np.pi * h.v / h.scale)) > 0.5)
    stripes = (h.variant == 1) & band_u
    plaid = (h.variant == 2) & (band_u ^ band_v)
    accent = stripes | plaid
    color[accent] = _mix(color[accent], h.c2[accent], np.full(int(accent.sum()), 0.55, np.float32))
    return color, np.zeros(len(h.u), np.float32)


def _tex_speckle(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    coarse = _fbm(h.u * 3, h.v * 3, h.salt)
    fine = _value_noise(h.u / h.scale, h.v / h.scale, h.salt + np.uint32(5))
    w = np.clip(0.25 * coarse + 0.75 * fine, 0, 1)
    w = np.where(h.variant == 1, w, (w > 0.55).astype(np.float32) * 0.8 + 0.2 * w)
    return _mix(h.c1, h.c2, w), np.zeros(len(h.u), np.float32)


def _tex_stripes(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    phase = h.u / h.scale
    frac = phase - np.floor(phase)
    w = np.where(h.variant == 1, (frac < 0.12).astype(np.float32), (frac < 0.5).astype(np.float32))
    noise = _fbm(h.u * 4, h.v * 4, h.salt) - 0.5
    return _mix(h.c1, h.c2, w) * (1 + 0.06 * noise)[:, None], np.zeros(len(h.u), np.float32)


def _tex_painting(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    du = np.minimum(h.u - h.u0, h.u1 - h.u)
    dv = np.minimum(h.v - h.v0, h.v1 - h.v)
    frame = ~h.front | (np.minimum(du, dv) < h.scale)
    rel_u = (h.u - h.u0) / np.maximum(h.u1 - h.u0, 1e-3)
    rel_v = (h.v1 - h.v) / np.maximum(h.v1 - h.v0, 1e-3)  # 0 at the top
    blobs = _fbm(rel_u * 3, rel_v * 3, h.salt, octaves=3)
    abstract = _mix(h.c1, h.c3, np.clip((blobs - 0.3) * 2.5, 0, 1))
    horizon = 0.45 + 0.15 * (_value_noise(rel_u * 4, np.zeros_like(rel_u), h.salt) - 0.5)
    sky = _mix(h.c3, np.ones_like(h.c3), rel_v * 0.6)
    ground = h.c1 * (0.7 + 0.4 * blobs)[:, None]
    landscape = np.where((rel_v < horizon)[:, None], sky, ground)
    cells = _hash01(np.floor(rel_u * 3).astype(np.int32), np.floor(rel_v * 3).astype(np.int32), h.salt)
    blocks = _mix(h.c1, h.c3, cells) * (0.6 + 0.5 * cells)[:, None]
    art = np.where(
        (h.variant == 0)[:, None], abstract, np.where((h.variant == 1)[:, None], landscape, blocks)
    )
    color = np.where(frame[:, None], h.c2, art)
    return color, np.zeros(len(h.u), np.float32)


def _tex_books(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    s = h.along / h.scale
    warped = s + 0.3 * np.sin(s * 1.7 + (h.salt % np.uint32(97)).astype(np.float32))
    book = np.floor(warped)
    edge = np.minimum(warped - book, book + 1 - warped)
    hue = _hash01(book.astype(np.int32), np.zeros_like(book, dtype=np.int32), h.salt)
    sat = 0.3 + 0.5 * _hash01(book.astype(np.int32), np.ones_like(book, dtype=np.int32), h.salt)
    val = 0.2 + 0.65 * _hash01(book.astype(np.int32), np.full_like(book, 2, dtype=np.int32), h.salt)
    spine = _hsv_to_rgb(hue, sat, val)
    rel_v = (h.v - h.v0) / np.maximum(h.v1 - h.v0, 1e-3)
    label = h.front & (np.abs(rel_v - 0.7) < 0.06) & (h.variant == 1)
    spine[label] = spine[label] * 0.4 + 0.55
    pages = h.axis == 1
    color = np.where(pages[:, None], h.c1, spine)
    color *= np.where(edge < 0.08, 0.45, 1.0)[:, None]
    return color, np.zeros(len(h.u), np.float32)


def _hsv_to_rgb(hue: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    k = (np.array([5.0, 3.0, 1.0], dtype=np.float32)[None, :] + hue[:, None] * 6) % 6
    return val[:, None] * (1 - sat[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1))


def _tex_cabinet(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    base, _ = _tex_plain(h)
    width = np.maximum(h.along1 - h.along0, 1e-3)
    height = np.maximum(h.v1 - h.v0, 1e-3)
    x, y = h.along - h.along0, h.v - h.v0
    seam = np.zeros(len(h.u), dtype=bool)
    handle = np.zeros(len(h.u), dtype=bool)
    doors = np.maximum(1, np.round(width / h.scale))
    door_w = width / doors
    k = np.floor(x / door_w)
    fx = x - k * door_w
    rows = np.maximum(1, np.round(height / h.scale))
    row_h = height / rows
    fy = y - np.floor(y / row_h) * row_h
    is_doors, is_drawers, is_mixed, is_fridge = (h.variant == i for i in range(4))
    seam |= (is_doors | is_mixed) & (np.minimum(fx, door_w - fx) < 0.004)
    side = np.where(k % 2 == 0, door_w - fx, fx)  # handles next to the seam between door pairs
    handle |= is_doors & (np.abs(side - 0.05) < 0.012) & (np.abs(y - height * 0.75) < 0.06)
    seam |= is_drawers & (np.minimum(fy, row_h - fy) < 0.004)
    handle |= is_drawers & (np.abs(fy - row_h * 0.7) < 0.012) & (np.abs(fx - door_w / 2) < 0.08)
    top = height - y
    seam |= is_mixed & ((np.abs(top - 0.2) < 0.004) | (np.minimum(fx, door_w - fx) < 0.004))
    handle |= is_mixed & (np.abs(top - 0.1) < 0.012) & (np.abs(fx - door_w / 2) < 0.07)
    seam |= is_fridge & (np.abs(top - height * 0.35) < 0.005)
    handle |= (
        is_fridge
        & (np.abs(x - width * 0.88) < 0.015)
        & (np.abs(top - height * 0.35) > 0.1)
        & (np.abs(top - height * 0.35) < 0.45)
    )
    is_door = h.variant == 4
    inset = np.minimum(np.minimum(x, width - x), np.minimum(np.abs(y - height * 0.45), height - y))
    panel_edge = is_door & (inset > 0.1) & (inset < 0.12)
    base[h.front & panel_edge] *= 0.8
    handle |= is_door & (np.abs(x - (width - 0.08)) < 0.02) & (np.abs(y - 1.0) < 0.05)
    base[h.front & seam] *= 0.45
    base[h.front & handle] = h.c2[h.front & handle]
    return base, np.zeros(len(h.u), np.float32)


def _tex_window(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    width = np.maximum(h.along1 - h.along0, 1e-3)
    height = np.maximum(h.v1 - h.v0, 1e-3)
    x, y = h.along - h.along0, h.v - h.v0
    frame = np.minimum(np.minimum(x, width - x), np.minimum(y, height - y)) < h.scale
    mullion = ((h.variant >= 1) & (np.abs(x - width / 2) < h.scale / 2)) | (
        (h.variant == 2) & (np.abs(y - height * 0.65) < h.scale / 2)
    )
    glass = h.front & ~frame & ~mullion
    rel_y = y / height
    sky = h.c1 * (0.85 + 0.3 * rel_y)[:, None]
    skyline = 0.2 + 0.25 * _fbm(h.along * 2.5, np.zeros_like(x), h.salt, octaves=3)
    outdoor = h.c3 * (0.75 + 0.5 * _value_noise(h.along * 12, h.v * 12, h.salt))[:, None]
    view = np.where((rel_y < skyline)[:, None], outdoor, sky)
    color = np.where(glass[:, None], view, h.c2)
    return color, glass.astype(np.float32)


def _tex_screen(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    width = np.maximum(h.along1 - h.along0, 1e-3)
    height = np.maximum(h.v1 - h.v0, 1e-3)
    x, y = h.along - h.along0, h.v - h.v0
    bezel = np.minimum(np.minimum(x, width - x), np.minimum(y, height - y)) < h.scale
    panel = h.front & ~bezel
    rel_x, rel_y = x / width, y / height
    off = h.c1 * (1 + 0.8 * rel_y)[:, None]
    picture = _mix(h.c3, h.c3[:, ::-1], _fbm(rel_x * 3, rel_y * 3, h.salt))
    lit = panel & (h.variant == 1)
    color = np.where(panel[:, None], np.where(lit[:, None], picture, off), h.c2)
    return color, lit.astype(np.float32)


def _tex_lamp(h: _Hits) -> tuple[np.ndarray, np.ndarray]:
    return h.c1.copy(), np.ones(len(h.u), np.float32)


_TEXTURES: dict[int, Callable[[_Hits], tuple[np.ndarray, np.ndarray]]] = {
    PLAIN: _tex_plain, WOOD: _tex_wood, TILES: _tex_tiles, FABRIC: _tex_fabric, SPECKLE: _tex_speckle,
    STRIPES: _tex_stripes, PAINTING: _tex_painting, BOOK_SPINES: _tex_books, CABINET: _tex_cabinet,
    WINDOW_VIEW: _tex_window, SCREEN: _tex_screen, LAMP: _tex_lamp,
}  # fmt: skip

_EMIT_GAIN = {WINDOW_VIEW: 1.6, SCREEN: 0.7, LAMP: 3.0}


@dataclass
class _MaterialTable:
    kind: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    c3: np.ndarray
    scale: np.ndarray
    variant: np.ndarray
    gloss: np.ndarray
    salt: np.ndarray

    @classmethod
    def of(cls, materials: Sequence[Material]) -> _MaterialTable:
        def column(name: str, dtype: type) -> np.ndarray:
            return np.array([getattr(m, name) for m in materials], dtype=dtype)

        return cls(
            column("kind", np.int64),
            column("c1", np.float32),
            column("c2", np.float32),
            column("c3", np.float32),
            column("scale", np.float32),
            column("variant", np.int64),
            column("gloss", np.float32),
            column("salt", np.uint32),
        )


def _albedo(
    scene: RoomScene,
    table: _MaterialTable,
    p: np.ndarray,
    axis: np.ndarray,
    normal_sign: np.ndarray,
    mat: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    facing: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-pixel sRGB albedo, emissive weight and emission gain from the materials' patterns."""
    n = len(p)
    rows = np.arange(n)
    ua, va = _U_AXIS[axis], _V_AXIS[axis]
    along_axis = np.where(facing // 2 == 0, 2, 0)
    front = (axis * 2 + (normal_sign > 0)) == facing
    albedo = np.zeros((n, 3), np.float32)
    emit = np.zeros(n, np.float32)
    gain = np.zeros(n, np.float32)
    kinds = table.kind[mat]
    for kind in np.unique(kinds):
        sel = np.flatnonzero(kinds == kind)
        m = mat[sel]
        r, a_u, a_v, a_l = rows[sel], ua[sel], va[sel], along_axis[sel]
        hits = _Hits(
            p=p[sel],
            axis=axis[sel],
            front=front[sel],
            u=p[r, a_u],
            v=p[r, a_v],
            u0=lo[r, a_u],
            u1=hi[r, a_u],
            v0=lo[r, a_v],
            v1=hi[r, a_v],
            along=p[r, a_l],
            along0=lo[r, a_l],
            along1=hi[r, a_l],
            c1=table.c1[m],
            c2=table.c2[m],
            c3=table.c3[m],
            scale=table.scale[m],
            variant=table.variant[m],
            salt=table.salt[m],
        )
        color, emissive = _TEXTURES[int(kind)](hits)
        albedo[sel] = color
        emit[sel] = emissive
        gain[sel] = _EMIT_GAIN.get(int(kind), 0.0)
    return np.clip(albedo, 0.0, 1.0), emit, gain


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


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
    t, box = _trace(scene, origin, dirs)
    p = origin + t[:, None] * dirs
    axis = np.empty(len(t), dtype=np.int64)
    room = box < 0
    inv = _safe_inverse(dirs)
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


def _check_resolution(resolution: int) -> None:
    if not isinstance(resolution, (int, np.integer)) or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise ValueError(
            f"resolution must be an integer in {MIN_RESOLUTION}..{MAX_RESOLUTION}, got {resolution!r}"
        )


def render_room(seed: int, index: int, resolution: int) -> Sample:
    """Render room ``index`` of ``seed`` as a square ``resolution`` image with exact dense labels.

    The layout comes from ``np.random.default_rng([seed, index])``; the scene type from a per-block
    permutation (see :func:`scene_type_of`) and the sensor noise from a third stream of ``(seed, index)``.
    """
    _check_resolution(resolution)
    resolution = int(resolution)
    scene = build_scene(seed, index)
    dirs = _camera_rays(scene.cam_rotation, scene.tan_half_fov, resolution)
    frame = _primary_hits(scene, dirs)
    table = _MaterialTable.of(scene.materials)
    mat, lo, hi, facing = _surface_params(scene, frame)
    sign = frame.normal[np.arange(len(mat)), frame.axis]
    albedo, emit, gain = _albedo(scene, table, frame.p, frame.axis, sign, mat, lo, hi, facing)
    radiance = _shade(scene, frame, albedo, emit, gain, table.gloss[mat], dirs)
    srgb = _expose(radiance, emit, resolution)
    noise_rng = np.random.default_rng([seed, index, _NOISE_STREAM])
    noisy = srgb * 255 + noise_rng.normal(0.0, scene.noise_sigma, srgb.shape)
    shape = (resolution, resolution)
    normal_cam = (frame.normal @ scene.cam_rotation).astype(np.float32)
    return Sample(
        key=f"room-{index:08d}",
        rgb=np.clip(np.round(noisy), 0, 255).astype(np.uint8).reshape(*shape, 3),
        scene=scene.scene,
        seg=frame.cls.reshape(shape),
        depth=frame.t.astype(np.float32).reshape(shape),
        normal=normal_cam.reshape(*shape, 3),
        meta={"source": "rooms", "id": int(index), "seed": int(seed), "scene_name": SCENE_TYPES[scene.scene]},
    )


def shadow_mask(seed: int, index: int, resolution: int) -> np.ndarray:
    """Boolean H x W map of pixels that face the light but are hidden from it by furniture (cast shadow)."""
    _check_resolution(resolution)
    scene = build_scene(seed, index)
    frame = _primary_hits(scene, _camera_rays(scene.cam_rotation, scene.tan_half_fov, int(resolution)))
    _, _, cosine = _light_geometry(scene, frame)
    no_emit = np.zeros(len(cosine), np.float32)
    return ((cosine > 0) & ~_lit(scene, frame, cosine, no_emit)).reshape(resolution, resolution)


class RoomsSource(Source):
    """The procedural rooms dataset as a :class:`Source` (picklable; loading renders on demand)."""

    name = "rooms"
    class_names = NYU13_CLASSES
    scene_names = SCENE_TYPES

    def __init__(self, resolution: int, seed: int, train: int, val: int, test: int) -> None:
        _check_resolution(resolution)
        for split, count in (("train", train), ("val", val), ("test", test)):
            if count < 0 or count > VAL_OFFSET:
                raise ValueError(f"{split}: size must be in 0..{VAL_OFFSET}, got {count}")
        self.resolution = int(resolution)
        self.seed = int(seed)
        self.sizes = {"train": int(train), "val": int(val), "test": int(test)}

    def split_ids(self) -> dict[str, Sequence[str]]:
        offsets = {"train": 0, "val": VAL_OFFSET, "test": TEST_OFFSET}
        return {split: [str(offsets[split] + i) for i in range(count)] for split, count in self.sizes.items()}

    def load(self, item_id: str) -> Sample:
        return render_room(self.seed, int(item_id), self.resolution)
