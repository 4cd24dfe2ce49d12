"""Tiny-Taskonomy importer on small folders in the real file layout, built in tmp_path."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import numpy as np
import pytest

from pipeline.config import SplitParams
from pipeline.data.schema import IGNORE_LABEL, validate_sample
from pipeline.data.taskonomy import (
    TASKONOMY_CLASSES,
    TaskonomySource,
    decode_depth,
    decode_normals,
    item_key,
)
from pipeline.errors import ParamsError, SourceError
from tests._builders import build_taskonomy, encode_taskonomy_normals, truncate, write_png

RANDOM = SplitParams(val_fraction=0.2, test_fraction=0.2)
NUM_CLASSES = len(TASKONOMY_CLASSES)


def _scenes_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("image,scene\n" + "".join(f"{image},{scene}\n" for image, scene in rows))
    return path


@pytest.fixture
def building(tmp_path: Path) -> tuple[Path, Path]:
    """A single building folder (the path the user points at) and its scene table."""
    root = build_taskonomy(tmp_path / "cauthron", building=None)
    rows = [
        ("point_0_view_0", "kitchen"),
        ("point_0_view_1_domain_rgb", "kitchen"),
        ("cauthron/point_3_view_2", "office"),
        ("cauthron/point_7_view_0_domain_rgb", "office"),
        ("point_12_view_1", "bathroom"),
    ]
    return root, _scenes_csv(tmp_path / "scenes.csv", rows)


def _ids(source: TaskonomySource) -> list[str]:
    return sorted(i for ids in source.split_ids().values() for i in ids)


def test_decode_normals_follows_the_taskonomy_frame():
    """Facing the camera, a floor and a wall seen on the left, as stored in Taskonomy PNGs."""
    encoded = np.array([[[128, 128, 255], [128, 255, 128], [0, 128, 128], [128, 128, 128]]], np.uint8)
    normals = decode_normals(encoded)
    assert np.allclose(normals[0, 0], (0, 0, -1), atol=0.01)  # blue: towards the viewer
    assert np.allclose(normals[0, 1], (0, -1, 0), atol=0.01)  # green: up = -y in our frame
    assert np.allclose(normals[0, 2], (1, 0, 0), atol=0.01)  # red 0: facing image right
    assert (normals[0, 3] == 0).all()  # grey: missing mesh
    assert np.allclose(decode_normals(encode_taskonomy_normals(normals[:, :3])), normals[:, :3], atol=0.01)


def test_decode_depth_units_and_missing():
    depth = decode_depth(np.array([[1024, 512, 65535, 0]], np.uint16))
    assert depth.dtype == np.float32 and depth.tolist() == [[2.0, 1.0, 0.0, 0.0]]


def test_item_key_is_sanitised():
    assert item_key("cauthron", "007", "2") == "tt-cauthron-p7-v2"
    assert item_key("my building.v2", "0", "0") == "tt-my_building_v2-p0-v0"


def test_single_building_folder_loads(building):
    root, csv_path = building
    source = TaskonomySource(root, csv_path, resolution=32, split=RANDOM, seed=0)
    assert source.class_names == TASKONOMY_CLASSES and NUM_CLASSES == 17
    assert source.scene_names == ("bathroom", "kitchen", "office")
    expected = [f"point_{p}_view_{v}" for p, v in ((0, 0), (0, 1), (12, 1), (3, 2), (7, 0))]
    assert _ids(source) == sorted(expected)
    for item_id in _ids(source):
        sample = validate_sample(source.load(item_id), num_classes=NUM_CLASSES, num_scenes=3, resolution=32)
        assert sample.meta["source"] == "taskonomy" and sample.meta["id"] == item_id
    sample = source.load("point_3_view_2")
    assert sample.key == "tt-cauthron-p3-v2"
    assert sample.meta["scene_name"] == "office" and sample.scene == 2
    assert sample.meta["building"] == "cauthron"


def test_labels_depth_and_normals_are_converted(building):
    root, csv_path = building
    sample = TaskonomySource(root, csv_path, resolution=40, split=RANDOM, seed=0).load("point_0_view_0")
    assert sample.seg[0, 20] == IGNORE_LABEL  # 0 = uncertain
    assert sample.seg[12, 5] == TASKONOMY_CLASSES.index("bottle")  # PNG 2
    assert sample.seg[25, 30] == TASKONOMY_CLASSES.index("background")  # PNG 1
    assert sample.seg[-1, 0] == TASKONOMY_CLASSES.index("vase")  # PNG 17
    assert sample.depth[20, 20] == pytest.approx(2.0) and (sample.depth[:5, :5] == 0).all()
    assert (sample.normal[:5, :5] == 0).all()  # missing depth and grey normal
    assert np.allclose(sample.normal[20, 20], (0, 0, -1), atol=0.01)
    assert np.allclose(sample.normal[-2, 20], (0, -1, 0), atol=0.01)  # the floor band points up


def test_buildings_as_subfolders(tmp_path: Path):
    root = tmp_path / "tiny"
    build_taskonomy(root, building="cauthron", views=((0, 0), (1, 0)), seg_domain="segment_semantic")
    build_taskonomy(root, building="beach", views=((0, 0), (2, 1)))
    rows = [("cauthron/point_0_view_0", "a"), ("cauthron/point_1_view_0", "b")]
    rows += [("beach/point_0_view_0_domain_rgb", "a"), ("beach/point_2_view_1", "b")]
    source = TaskonomySource(root, _scenes_csv(tmp_path / "s.csv", rows), 32, RANDOM, seed=1)
    ids = _ids(source)
    assert ids == [
        "beach/point_0_view_0",
        "beach/point_2_view_1",
        "cauthron/point_0_view_0",
        "cauthron/point_1_view_0",
    ]
    keys = {source.load(item_id).key for item_id in ids}
    assert keys == {"tt-beach-p0-v0", "tt-beach-p2-v1", "tt-cauthron-p0-v0", "tt-cauthron-p1-v0"}


def test_relative_scenes_csv_is_found_in_the_dataset_folder(building):
    root, csv_path = building
    (root / "scenes.csv").write_text(csv_path.read_text())
    source = TaskonomySource(root, "scenes.csv", 32, RANDOM, 0)
    assert source.scene_names == ("bathroom", "kitchen", "office")


def test_random_split_is_seeded_and_complete(building):
    root, csv_path = building
    first = TaskonomySource(root, csv_path, 32, RANDOM, 5).split_ids()
    assert first == TaskonomySource(root, csv_path, 32, RANDOM, 5).split_ids()
    assert [len(first[name]) for name in ("train", "val", "test")] == [3, 1, 1]


def test_source_pickles(building):
    root, csv_path = building
    source = TaskonomySource(root, csv_path, 32, RANDOM, 0)
    clone = pickle.loads(pickle.dumps(source))
    assert np.array_equal(clone.load("point_7_view_0").normal, source.load("point_7_view_0").normal)


def test_scenes_csv_is_required(building):
    root, _ = building
    with pytest.raises(ParamsError, match=re.escape("data.taskonomy.scenes_csv")):
        TaskonomySource(root, None, 32, RANDOM, 0)


def test_official_split_is_rejected(building):
    root, csv_path = building
    with pytest.raises(ParamsError, match=re.escape("data.split.scheme")):
        TaskonomySource(root, csv_path, 32, SplitParams(scheme="official"), 0)


def test_image_missing_from_scenes_csv(building, tmp_path: Path):
    root, _ = building
    partial = _scenes_csv(tmp_path / "partial.csv", [("point_0_view_0", "kitchen")])
    with pytest.raises(SourceError, match=re.escape(f"{partial}: no scene for image point_0_view_1")):
        TaskonomySource(root, partial, 32, RANDOM, 0)


def test_scenes_csv_without_header(building, tmp_path: Path):
    root, _ = building
    bad = tmp_path / "bad.csv"
    bad.write_text("point_0_view_0,kitchen\n")
    with pytest.raises(SourceError, match=re.escape(f"{bad}: expected a header with columns image,scene")):
        TaskonomySource(root, bad, 32, RANDOM, 0)


def test_missing_folder(tmp_path: Path, building):
    _, csv_path = building
    with pytest.raises(SourceError, match=re.escape(str(tmp_path / "absent"))):
        TaskonomySource(tmp_path / "absent", csv_path, 32, RANDOM, 0)


def test_missing_task_folder(building):
    root, csv_path = building
    for png in (root / "normal").iterdir():
        png.unlink()
    (root / "normal").rmdir()
    with pytest.raises(SourceError, match=re.escape(f"{root / 'normal'}: folder does not exist")):
        TaskonomySource(root, csv_path, 32, RANDOM, 0)


def test_missing_companion_file(building):
    root, csv_path = building
    (root / "depth_zbuffer" / "point_3_view_2_domain_depth_zbuffer.png").unlink()
    with pytest.raises(
        SourceError, match=re.escape("point_3_view_2_domain_depth_zbuffer.png: file does not exist")
    ):
        TaskonomySource(root, csv_path, 32, RANDOM, 0)


def test_truncated_png(building):
    root, csv_path = building
    broken = truncate(root / "normal" / "point_0_view_1_domain_normal.png")
    source = TaskonomySource(root, csv_path, 32, RANDOM, 0)
    with pytest.raises(SourceError, match=re.escape(f"{broken}: cannot decode")):
        source.load("point_0_view_1")


def test_label_outside_the_classes(building):
    root, csv_path = building
    path = write_png(
        root / "segment_semantic" / "point_12_view_1_domain_segmentsemantic.png",
        np.full((40, 40), 18, np.uint8),
    )
    with pytest.raises(SourceError, match=re.escape(f"{path}: label 18 outside 0..17")):
        TaskonomySource(root, csv_path, 32, RANDOM, 0).load("point_12_view_1")


def test_mismatched_sizes(building):
    root, csv_path = building
    write_png(
        root / "depth_zbuffer" / "point_0_view_0_domain_depth_zbuffer.png", np.full((30, 40), 512, np.uint16)
    )
    with pytest.raises(SourceError, match="sizes differ"):
        TaskonomySource(root, csv_path, 32, RANDOM, 0).load("point_0_view_0")
