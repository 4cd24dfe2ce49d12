"""Visualisation helpers: colour coding, sample grids and atomic PNG writing."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.data.rooms import SCENE_TYPES, render_room
from pipeline.data.rooms.preview import rooms_preview
from pipeline.data.schema import Sample
from pipeline.viz import (
    GRID_GAP,
    GRID_HEADER,
    GRID_LABEL_WIDTH,
    NYU13_PALETTE,
    class_palette,
    colorize_depth,
    colorize_normal,
    colorize_seg,
    sample_grid,
    save_image,
)


@pytest.fixture(scope="module")
def rooms() -> list[Sample]:
    return [render_room(0, index, 32) for index in range(3)]


def test_nyu13_palette_has_13_distinct_colours() -> None:
    assert NYU13_PALETTE.shape == (13, 3) and NYU13_PALETTE.dtype == np.uint8
    assert len({tuple(colour) for colour in NYU13_PALETTE}) == 13


def test_colorize_seg_maps_ids_to_palette_and_ignore_to_black() -> None:
    seg = np.array([[0, 1, 12], [255, 4, 11]], dtype=np.uint8)
    colours = colorize_seg(seg)
    assert colours.shape == (2, 3, 3) and colours.dtype == np.uint8
    np.testing.assert_array_equal(colours[0, 0], NYU13_PALETTE[0])
    np.testing.assert_array_equal(colours[0, 2], NYU13_PALETTE[12])
    np.testing.assert_array_equal(colours[1, 0], [0, 0, 0])


def test_forty_class_palette_is_deterministic_and_distinct() -> None:
    palette = class_palette(40)
    assert palette.shape == (40, 3) and palette.dtype == np.uint8
    assert len({tuple(colour) for colour in palette}) == 40
    np.testing.assert_array_equal(palette, class_palette(40))
    seg = np.array([[39, 20, 255]], dtype=np.uint8)
    colours = colorize_seg(seg)  # ids beyond 12 switch to the generated palette
    np.testing.assert_array_equal(colours[0, 0], palette[39])
    np.testing.assert_array_equal(colours[0, 2], [0, 0, 0])


def test_colorize_depth_uses_a_colormap_and_blacks_out_invalid() -> None:
    depth = np.array([[0.0, 1.0], [2.0, 4.0]], dtype=np.float32)
    colours = colorize_depth(depth, vmax=4.0)
    assert colours.shape == (2, 2, 3) and colours.dtype == np.uint8
    np.testing.assert_array_equal(colours[0, 0], [0, 0, 0])
    brightness = colours.astype(int).sum(axis=-1)
    assert brightness[0, 1] < brightness[1, 0] < brightness[1, 1]  # magma: near is dark, far is bright
    assert colorize_depth(np.zeros((3, 3), np.float32)).max() == 0


def test_colorize_normal_maps_unit_vectors_and_zero_to_black() -> None:
    normal = np.zeros((1, 3, 3), dtype=np.float32)
    normal[0, 0] = (0.0, 0.0, -1.0)
    normal[0, 1] = (1.0, 0.0, 0.0)
    colours = colorize_normal(normal)
    assert colours.shape == (1, 3, 3) and colours.dtype == np.uint8
    np.testing.assert_array_equal(colours[0, 0], [128, 128, 0])
    np.testing.assert_array_equal(colours[0, 1], [255, 128, 128])
    np.testing.assert_array_equal(colours[0, 2], [0, 0, 0])


def test_sample_grid_has_one_cell_per_row_and_column(rooms: list[Sample]) -> None:
    grid = sample_grid(rooms, scene_names=SCENE_TYPES, cell=32)
    assert grid.mode == "RGB"
    assert grid.size == (GRID_LABEL_WIDTH + 4 * (32 + GRID_GAP), GRID_HEADER + 3 * (32 + GRID_GAP))
    pixels = np.asarray(grid)
    top = GRID_HEADER + 32 + GRID_GAP  # the second row's RGB cell is the sample's image
    np.testing.assert_array_equal(
        pixels[top : top + 32, GRID_LABEL_WIDTH : GRID_LABEL_WIDTH + 32], rooms[1].rgb
    )


def test_sample_grid_shows_only_present_columns_and_scales_cells(rooms: list[Sample]) -> None:
    rgb_only = [Sample(key=s.key, rgb=s.rgb, scene=s.scene) for s in rooms[:2]]
    grid = sample_grid(rgb_only, cell=64)
    assert grid.size == (GRID_LABEL_WIDTH + 1 * (64 + GRID_GAP), GRID_HEADER + 2 * (64 + GRID_GAP))
    with pytest.raises(ValueError):
        sample_grid([])


def test_save_image_writes_a_readable_png_atomically(tmp_path: Path, rooms: list[Sample]) -> None:
    target = tmp_path / "sub" / "grid.png"
    image = Image.fromarray(rooms[0].rgb)
    assert save_image(image, target) == target
    save_image(Image.fromarray(rooms[1].rgb), target)  # replaces the previous file
    with Image.open(target) as reread:
        assert reread.format == "PNG"
        np.testing.assert_array_equal(np.asarray(reread), rooms[1].rgb)
    assert sorted(p.name for p in target.parent.iterdir()) == ["grid.png"]
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~umask  # not mkstemp's private 0600


def test_save_image_leaves_no_temporary_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "broken.png"
    with pytest.raises(AttributeError):
        save_image("not an image", target)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_rooms_preview_writes_every_scene_type(tmp_path: Path) -> None:
    path = rooms_preview(tmp_path / "preview.png", resolution=32, per_scene=1)
    with Image.open(path) as image:
        assert image.size == (GRID_LABEL_WIDTH + 4 * (96 + GRID_GAP), GRID_HEADER + 6 * (96 + GRID_GAP))
