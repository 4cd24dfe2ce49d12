"""Surface materials and colour palettes: ``Material``, per-scene-type styles, colour and random helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Color = tuple[float, float, float]

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


WALLS_WARM = [
    (0.93, 0.89, 0.82),
    (0.90, 0.80, 0.68),
    (0.93, 0.86, 0.70),
    (0.90, 0.78, 0.75),
    (0.82, 0.76, 0.84),
]
WALLS_COOL = [
    (0.86, 0.88, 0.90),
    (0.72, 0.81, 0.88),
    (0.77, 0.85, 0.80),
    (0.80, 0.80, 0.80),
    (0.68, 0.72, 0.77),
]
WALLS_NEUTRAL = [(0.95, 0.95, 0.93), (0.88, 0.87, 0.84), (0.78, 0.76, 0.72)]
WALLS_BOLD = [
    (0.62, 0.32, 0.27),
    (0.32, 0.44, 0.38),
    (0.30, 0.36, 0.50),
    (0.80, 0.62, 0.32),
    (0.45, 0.47, 0.50),
]
WOODS = [(0.80, 0.64, 0.44), (0.64, 0.44, 0.28), (0.48, 0.31, 0.19), (0.33, 0.21, 0.14), (0.72, 0.54, 0.38)]
PAINTED = [
    (0.93, 0.93, 0.91),
    (0.20, 0.20, 0.21),
    (0.55, 0.56, 0.58),
    (0.62, 0.70, 0.74),
    (0.80, 0.76, 0.68),
]
FABRIC_WARM = [
    (0.86, 0.79, 0.67),
    (0.72, 0.36, 0.30),
    (0.83, 0.62, 0.34),
    (0.66, 0.48, 0.52),
    (0.92, 0.90, 0.86),
]
FABRIC_COOL = [
    (0.40, 0.45, 0.52),
    (0.22, 0.28, 0.42),
    (0.30, 0.42, 0.36),
    (0.55, 0.55, 0.55),
    (0.20, 0.20, 0.22),
]
LEATHER = [(0.42, 0.25, 0.15), (0.16, 0.14, 0.13), (0.60, 0.40, 0.25)]
TILES_LIGHT = [
    (0.94, 0.94, 0.93),
    (0.85, 0.88, 0.91),
    (0.72, 0.84, 0.89),
    (0.89, 0.85, 0.77),
    (0.80, 0.90, 0.86),
]
TILES_DARK = [(0.30, 0.32, 0.35), (0.58, 0.37, 0.28), (0.45, 0.50, 0.56), (0.20, 0.30, 0.45)]
CARPETS = [
    (0.56, 0.53, 0.48),
    (0.42, 0.44, 0.51),
    (0.63, 0.57, 0.47),
    (0.37, 0.31, 0.29),
    (0.50, 0.55, 0.50),
]
STONES = [(0.86, 0.86, 0.84), (0.22, 0.22, 0.24), (0.60, 0.58, 0.55), (0.75, 0.70, 0.62)]
METALS = [(0.75, 0.76, 0.78), (0.45, 0.46, 0.48), (0.15, 0.15, 0.16)]
BRIGHT = [
    (0.85, 0.20, 0.18), (0.18, 0.40, 0.75), (0.95, 0.75, 0.15), (0.20, 0.60, 0.35), (0.92, 0.92, 0.90),
    (0.12, 0.12, 0.13), (0.60, 0.30, 0.65), (0.95, 0.55, 0.25), (0.55, 0.75, 0.85), (0.70, 0.62, 0.50),
]  # fmt: skip


@dataclass(frozen=True)
class Style:
    """Per-scene-type preferences for room and furniture materials (probabilistic, overlapping)."""

    size: tuple[float, float]
    height: tuple[float, float]
    walls: list[Color]
    floors: dict[str, float]
    woods: list[Color]
    fabrics: list[Color]
    wall_tiles: float = 0.0


STYLES: dict[str, Style] = {
    "bedroom": Style(
        size=(3.0, 5.0), height=(2.4, 2.8), walls=WALLS_WARM + WALLS_NEUTRAL,
        floors={"wood": 0.5, "carpet": 0.45, "tile": 0.05},
        woods=WOODS + PAINTED[:1], fabrics=FABRIC_WARM + FABRIC_COOL[:2],
    ),
    "kitchen": Style(
        size=(3.0, 5.5), height=(2.4, 3.0), walls=WALLS_NEUTRAL + WALLS_WARM[2:4] + WALLS_COOL[:2],
        floors={"tile": 0.5, "checker": 0.2, "wood": 0.3},
        woods=PAINTED + WOODS[:2], fabrics=FABRIC_WARM, wall_tiles=0.35,
    ),
    "living_room": Style(
        size=(4.0, 7.0), height=(2.5, 3.2), walls=WALLS_WARM + WALLS_BOLD + WALLS_NEUTRAL,
        floors={"wood": 0.6, "carpet": 0.3, "tile": 0.1},
        woods=WOODS, fabrics=FABRIC_COOL + LEATHER + FABRIC_WARM[:2],
    ),
    "office": Style(
        size=(3.0, 6.0), height=(2.5, 3.0), walls=WALLS_COOL + WALLS_NEUTRAL,
        floors={"carpet": 0.6, "wood": 0.2, "tile": 0.2},
        woods=PAINTED + WOODS[:1], fabrics=FABRIC_COOL,
    ),
    "bathroom": Style(
        size=(2.0, 3.4), height=(2.3, 2.7), walls=WALLS_COOL + WALLS_NEUTRAL[:1],
        floors={"tile": 0.75, "checker": 0.25},
        woods=PAINTED[:1] + PAINTED[3:] + WOODS[:1], fabrics=FABRIC_COOL[:1] + FABRIC_WARM[4:],
        wall_tiles=0.75,
    ),
    "dining_room": Style(
        size=(3.5, 6.0), height=(2.5, 3.1), walls=WALLS_WARM + WALLS_BOLD[:2] + WALLS_NEUTRAL,
        floors={"wood": 0.7, "tile": 0.3},
        woods=WOODS + PAINTED[1:2], fabrics=FABRIC_WARM + FABRIC_COOL[2:3],
    ),
}  # fmt: skip

ALL_WALLS = WALLS_WARM + WALLS_COOL + WALLS_NEUTRAL + WALLS_BOLD
ALL_FABRICS = FABRIC_WARM + FABRIC_COOL + LEATHER


def jittered(rng: np.random.Generator, color: Color, amount: float = 0.05) -> Color:
    """``color`` with random brightness and per-channel changes (clipped to [0.02, 0.98])."""
    scaled = np.clip(np.asarray(color) * rng.uniform(0.88, 1.08) + rng.normal(0.0, amount, 3), 0.02, 0.98)
    return float(scaled[0]), float(scaled[1]), float(scaled[2])


def uniform(rng: np.random.Generator, low: float, high: float) -> float:
    """Uniform draw from [low, high] (a range collapsed by rounding gives ``low``)."""
    return float(rng.uniform(low, max(low, high)))


def darker(color: Color, factor: float) -> Color:
    return color[0] * factor, color[1] * factor, color[2] * factor


def choose(rng: np.random.Generator, options: Sequence[Color], jitter: float = 0.05) -> Color:
    return jittered(rng, options[int(rng.integers(len(options)))], jitter)
