"""Procedural textures: value noise, the per-kind surface patterns and per-pixel albedo."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

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
    Material,
)
from pipeline.data.rooms.scene import RoomScene

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
class MaterialTable:
    kind: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    c3: np.ndarray
    scale: np.ndarray
    variant: np.ndarray
    gloss: np.ndarray
    salt: np.ndarray

    @classmethod
    def of(cls, materials: Sequence[Material]) -> MaterialTable:
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


def surface_albedo(
    scene: RoomScene,
    table: MaterialTable,
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
