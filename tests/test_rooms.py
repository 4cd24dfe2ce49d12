"""The procedural ``rooms`` dataset: purity, exact labels, scene statistics and the Source wrapper."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pipeline.data.rooms import (
    REFERENCE_OFFSET,
    SCENE_TYPES,
    TEST_OFFSET,
    VAL_OFFSET,
    RoomsSource,
    build_scene,
    light_visibility,
    render_room,
    scene_type_of,
    shadow_mask,
)
from pipeline.data.schema import NYU13_CLASSES, Sample, validate_sample

CLASS = {name: i for i, name in enumerate(NYU13_CLASSES)}
STATS_SAMPLES = 72


def assert_same_sample(a: Sample, b: Sample) -> None:
    assert a.key == b.key and a.scene == b.scene and a.meta == b.meta
    for name in ("rgb", "seg", "depth", "normal"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    """A dozen blocks of six (every scene type twelve times) at a small resolution."""
    return [render_room(0, index, 32) for index in range(STATS_SAMPLES)]


def class_fraction(samples: list[Sample], scene: str, name: str) -> float:
    chosen = [s for s in samples if s.scene == SCENE_TYPES.index(scene)]
    return float(np.mean([(s.seg == CLASS[name]).mean() for s in chosen]))


def pixel_rays(sample_index: int, resolution: int, seed: int = 0) -> np.ndarray:
    """Camera-frame rays (x, y, 1) through the pixel centres, from the scene's field of view."""
    focal = (resolution / 2) / build_scene(seed, sample_index).tan_half_fov
    coords = (np.arange(resolution) + 0.5 - resolution / 2) / focal
    ys, xs = np.meshgrid(coords, coords, indexing="ij")
    return np.stack([xs, ys, np.ones_like(xs)], axis=-1)


# -- purity and resolution ---------------------------------------------------------------------


def test_render_is_a_pure_function_of_seed_index_and_resolution() -> None:
    assert_same_sample(render_room(3, 17, 48), render_room(3, 17, 48))


def test_other_index_or_seed_gives_another_image() -> None:
    base = render_room(0, 5, 48)
    assert not np.array_equal(base.rgb, render_room(0, 6, 48).rgb)
    assert not np.array_equal(base.rgb, render_room(1, 5, 48).rgb)
    assert not np.array_equal(base.depth, render_room(1, 5, 48).depth)


def test_layout_does_not_depend_on_resolution() -> None:
    for index in range(6):
        small, large = render_room(0, index, 64), render_room(0, index, 128)
        assert small.scene == large.scene
        hist_small = np.bincount(small.seg.ravel(), minlength=13) / small.seg.size
        hist_large = np.bincount(large.seg.ravel(), minlength=13) / large.seg.size
        assert np.abs(hist_small - hist_large).sum() < 0.08, index
        pooled = large.depth.reshape(64, 2, 64, 2).mean(axis=(1, 3))
        assert np.median(np.abs(pooled - small.depth) / small.depth) < 0.01, index


@pytest.mark.parametrize("resolution", [32, 256])
def test_resolution_bounds_work(resolution: int) -> None:
    sample = render_room(0, 1, resolution)
    validate_sample(sample, num_classes=13, num_scenes=len(SCENE_TYPES), resolution=resolution)


@pytest.mark.parametrize("resolution", [31, 257, 0, 64.0])
def test_resolution_out_of_range_raises_naming_it(resolution: float) -> None:
    with pytest.raises(ValueError, match="resolution"):
        render_room(0, 1, resolution)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="resolution"):
        RoomsSource(resolution, 0, 1, 1, 1)  # type: ignore[arg-type]


# -- schema and exact labels ---------------------------------------------------------------------


def test_samples_pass_the_schema(samples: list[Sample]) -> None:
    for index, sample in enumerate(samples[:30]):
        validate_sample(sample, num_classes=13, num_scenes=len(SCENE_TYPES), resolution=32)
        assert sample.key == f"room-{index:08d}"
        assert sample.meta == {
            "source": "rooms",
            "id": index,
            "seed": 0,
            "scene_name": SCENE_TYPES[sample.scene],
        }
        assert (sample.seg < 13).all()  # the room is closed: no ignore pixels


def test_normals_are_unit_and_face_the_camera() -> None:
    for index in range(6):
        sample = render_room(0, index, 64)
        np.testing.assert_allclose(np.linalg.norm(sample.normal, axis=-1), 1.0, atol=1e-5)
        facing = np.einsum("hwc,hwc->hw", sample.normal, pixel_rays(index, 64))
        assert (facing < 0).all()


def test_depth_is_positive_and_inside_the_room() -> None:
    for index in range(12):
        sample = render_room(0, index, 48)
        width, height, depth = build_scene(0, index).size
        diagonal = float(np.sqrt(width**2 + height**2 + depth**2))
        assert sample.depth.min() > 0.1
        assert sample.depth.max() < min(15.0, diagonal)


def test_floor_points_lie_on_the_floor_plane_and_face_up() -> None:
    """Back-projecting floor pixels with depth and pose lands on y = 0; their normals point up."""
    for index in range(6):
        sample = render_room(0, index, 64)
        scene = build_scene(0, index)
        floor = sample.seg == CLASS["floor"]
        assert floor.sum() > 50
        cam_points = pixel_rays(index, 64)[floor] * sample.depth[floor][:, None]
        world = cam_points @ scene.cam_rotation.T + scene.cam_position
        assert np.mean(np.abs(world[:, 1]) < 0.02) > 0.97  # a rug is 1.2 cm high
        up = scene.cam_rotation[1]  # world +y in camera coordinates
        assert up[1] < -0.8  # OpenCV y points down, so "up" has negative y
        assert np.mean(np.abs(sample.normal[floor] - up).max(axis=1) < 1e-4) > 0.97


def test_layout_stays_inside_the_room_and_the_camera_is_free() -> None:
    counts = []
    for index in range(24):
        scene = build_scene(0, index)
        window = scene.cls == CLASS["window"]
        assert (scene.lo[~window] > -1e-3).all() and (scene.hi[~window] < scene.size + 1e-3).all()
        assert (scene.lo[window] > -0.2).all() and (scene.hi[window] < scene.size + 0.2).all()
        inside = (scene.lo < scene.cam_position).all(axis=1) & (scene.hi > scene.cam_position).all(axis=1)
        assert not inside.any()
        assert 0 < scene.cam_position[1] < scene.size[1]
        counts.append(len(scene.lo))
    assert min(counts) >= 8 and 20 <= np.median(counts) <= 80, counts


def test_separate_pieces_do_not_cut_into_each_other() -> None:
    """Boxes of different pieces may touch but not overlap (rugs on the floor excepted)."""
    for index in range(30):
        scene = build_scene(0, index)
        group = np.empty(len(scene.lo), dtype=int)
        for g, members in enumerate(scene.group_boxes):
            group[members] = g
        overlap = np.minimum(scene.hi[:, None], scene.hi[None]) - np.maximum(
            scene.lo[:, None], scene.lo[None]
        )
        volume = np.clip(overlap, 0, None).prod(axis=-1)
        not_rug = scene.cls != CLASS["floor"]
        clash = (group[:, None] != group[None]) & not_rug[:, None] & not_rug[None] & (volume > 1e-5)
        assert not clash.any(), (index, np.argwhere(clash)[:3])


# -- scenes and appearance -----------------------------------------------------------------------


def test_scene_types_are_balanced_per_block_of_six(samples: list[Sample]) -> None:
    types = [scene_type_of(0, index) for index in range(60)]
    assert sorted(types) == sorted(list(range(len(SCENE_TYPES))) * 10)
    assert [s.scene for s in samples] == [scene_type_of(0, i) for i in range(len(samples))]
    assert types != [scene_type_of(1, index) for index in range(60)]


def test_scene_types_differ_in_object_statistics_but_overlap(samples: list[Sample]) -> None:
    assert class_fraction(samples, "bedroom", "bed") > 0.05
    assert class_fraction(samples, "bathroom", "bed") < class_fraction(samples, "bedroom", "bed") / 10
    assert class_fraction(samples, "living_room", "sofa") > 5 * class_fraction(samples, "kitchen", "sofa")
    assert class_fraction(samples, "dining_room", "chair") > 3 * class_fraction(samples, "bathroom", "chair")
    assert class_fraction(samples, "kitchen", "furniture") > class_fraction(
        samples, "dining_room", "furniture"
    )
    with_chairs = {s.scene for s in samples if (s.seg == CLASS["chair"]).any()}
    with_tables = {s.scene for s in samples if (s.seg == CLASS["table"]).any()}
    assert len(with_chairs) >= 3 and len(with_tables) >= 3


def test_rgb_is_not_a_function_of_the_labels(samples: list[Sample]) -> None:
    wall_means = np.array(
        [s.rgb[s.seg == CLASS["wall"]].mean(axis=0) for s in samples if (s.seg == 11).sum() > 20]
    )
    assert wall_means.std(axis=0).mean() > 10
    floors = [s.rgb[s.seg == CLASS["floor"]].astype(float) for s in samples[:12] if (s.seg == 4).sum() > 50]
    assert np.mean([floor.std(axis=0).mean() for floor in floors]) > 4  # textures and shading within images


def test_windows_are_bright_and_lamp_light_falls_off(samples: list[Sample]) -> None:
    window = [
        s.rgb[s.seg == CLASS["window"]].mean() for s in samples if (s.seg == CLASS["window"]).sum() > 10
    ]
    others = [
        s.rgb[s.seg != CLASS["window"]].mean() for s in samples if (s.seg == CLASS["window"]).sum() > 10
    ]
    assert len(window) >= 3
    assert np.mean(window) > np.mean(others)


def test_furniture_casts_shadows_on_the_floor() -> None:
    darker = []
    for index in range(18):
        sample, shadow = render_room(0, index, 64), shadow_mask(0, index, 64)
        floor = sample.seg == CLASS["floor"]
        luminance = sample.rgb.astype(float).mean(axis=-1)
        if (floor & shadow).sum() >= 10 and (floor & ~shadow).sum() >= 10:
            darker.append(luminance[floor & shadow].mean() < luminance[floor & ~shadow].mean())
    assert len(darker) >= 5
    assert np.mean(darker) > 0.8


def test_light_visibility_blocks_under_a_table_top() -> None:
    for index in range(60):
        scene = build_scene(0, index)
        tops = np.flatnonzero((scene.cls == CLASS["table"]) & (scene.hi[:, 1] - scene.lo[:, 1] < 0.06))
        tops = [
            i for i in tops if min(scene.hi[i, 0] - scene.lo[i, 0], scene.hi[i, 2] - scene.lo[i, 2]) > 0.5
        ]
        if tops:
            break
    else:
        pytest.fail("no table in the first 60 rooms")
    top = tops[0]
    centre = (scene.lo[top] + scene.hi[top]) / 2
    below = np.array([[centre[0], scene.lo[top, 1] - 0.02, centre[2]]], np.float32)
    near_light = scene.light[None, :] - np.array([[0.0, 0.3, 0.0]], np.float32)
    down = np.array([[0.0, -1.0, 0.0]], np.float32)
    assert not light_visibility(scene, below, down)[0]
    assert light_visibility(scene, near_light, -down)[0]


# -- the Source ------------------------------------------------------------------------------------


def test_source_split_ids_use_fixed_offsets() -> None:
    source = RoomsSource(resolution=32, seed=0, train=3, val=2, test=2, reference=1)
    ids = source.split_ids()
    assert ids == {
        "train": ["0", "1", "2"],
        "val": [str(VAL_OFFSET), str(VAL_OFFSET + 1)],
        "test": [str(TEST_OFFSET), str(TEST_OFFSET + 1)],
        "reference": [str(REFERENCE_OFFSET)],  # rooms never trained on, validated or tested on
    }
    bigger = RoomsSource(resolution=32, seed=0, train=50, val=2, test=2).split_ids()
    assert bigger["val"] == ids["val"] and bigger["test"] == ids["test"]
    assert (
        source.name == "rooms" and source.class_names == NYU13_CLASSES and source.scene_names == SCENE_TYPES
    )


def test_source_loads_rendered_rooms_and_pickles() -> None:
    source = RoomsSource(resolution=32, seed=4, train=2, val=1, test=1)
    item = source.split_ids()["val"][0]
    sample = source.load(item)
    assert_same_sample(sample, render_room(4, VAL_OFFSET, 32))
    assert sample.key == f"room-{VAL_OFFSET:08d}"
    clone = pickle.loads(pickle.dumps(source))
    assert_same_sample(clone.load(item), sample)
