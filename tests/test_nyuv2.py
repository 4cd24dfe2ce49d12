"""NYUv2 importers: the class tables, splits, the HDF5 .mat and the PNG folder, built in tmp_path."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.config import SplitParams
from pipeline.data import nyuv2
from pipeline.data.importing import random_split
from pipeline.data.nyuv2 import (
    NYUv2FolderSource,
    NYUv2MatSource,
    class_label_lut,
    nyu_tables,
    official_split,
    raw_label_lut,
)
from pipeline.data.schema import IGNORE_LABEL, NYU13_CLASSES, validate_sample
from pipeline.errors import ParamsError, SourceError
from tests._builders import (
    build_nyu_folder,
    build_nyu_mat,
    corrupt_chunk,
    nyu_arrays,
    truncate,
    write_png,
)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
NYUV2_MINI = SHARED / "nyuv2-mini"
NYUV2_META = SHARED / "nyuv2-meta"
RANDOM = SplitParams()
OFFICIAL = SplitParams(scheme="official")
FLOOR13, WALL13, CEILING13 = (NYU13_CLASSES.index(name) for name in ("floor", "wall", "ceiling"))


def _all_ids(source) -> list[str]:
    return sorted(i for ids in source.split_ids().values() for i in ids)


# --- tables ------------------------------------------------------------------------------------


def test_tables_have_the_documented_sizes():
    tables = nyu_tables()
    assert len(tables["raw_to_40"]) == 894 and len(tables["classes40"]) == 40
    assert len(tables["map_40_to_13"]) == 40 and tuple(tables["classes13"]) == NYU13_CLASSES
    train, test = set(tables["train_ndxs"]), set(tables["test_ndxs"])
    assert (len(train), len(test)) == (795, 654)
    assert not train & test and train | test == set(range(1, 1450))


@pytest.mark.parametrize(
    ("raw", "name40", "name13"),
    [(11, "floor", "floor"), (21, "wall", "wall"), (4, "ceiling", "ceiling"), (5, "chair", "chair")],
)
def test_raw_labels_map_to_40_and_13_classes(raw, name40, name13):
    tables = nyu_tables()
    assert raw_label_lut(40)[raw] == tables["classes40"].index(name40)
    assert raw_label_lut(13)[raw] == NYU13_CLASSES.index(name13)


def test_unlabelled_and_class_luts():
    assert raw_label_lut(13)[0] == raw_label_lut(40)[0] == IGNORE_LABEL
    assert raw_label_lut(40).shape == (895,) and raw_label_lut(13)[1:].max() == 12
    assert list(class_label_lut(13)[:3]) == [IGNORE_LABEL, 0, 1] and class_label_lut(13)[13] == 12
    with pytest.raises(ParamsError, match="num_classes"):
        raw_label_lut(20)


def test_packaged_json_matches_the_mat_tables():
    if not NYUV2_META.is_dir():
        pytest.skip("../shared/datasets/nyuv2-meta is not present")
    from scipy.io import loadmat

    from pipeline.data.tables.build_nyuv2_tables import build_tables

    mapping40 = loadmat(NYUV2_META / "classMapping40.mat")
    mapping13 = loadmat(NYUV2_META / "class13Mapping.mat")["classMapping13"][0, 0]
    tables = nyu_tables()
    assert tables["raw_to_40"] == mapping40["mapClass"].ravel().tolist()
    assert tables["map_40_to_13"] == mapping13["labels13"].ravel().tolist()
    assert tables["raw_to_40"][10] == 2  # raw 11 "floor" -> 40-class 2 "floor"
    assert str(mapping40["allClassName"].ravel()[10][0]) == "floor"
    assert build_tables(NYUV2_META) == tables  # the committed JSON is what the script writes
    packaged = Path(nyuv2.__file__).with_name("tables") / "nyuv2.json"
    assert json.loads(packaged.read_text()) == tables


# --- splits ------------------------------------------------------------------------------------


def test_random_split_is_seeded_disjoint_and_complete():
    ids = [f"{i:04d}" for i in range(1, 101)]
    split = SplitParams(val_fraction=0.2, test_fraction=0.1)
    first, again, other = (
        random_split(ids, split, 3),
        random_split(ids, split, 3),
        random_split(ids, split, 4),
    )
    assert first == again and first != other
    assert (len(first["train"]), len(first["val"]), len(first["test"])) == (70, 20, 10)
    assert sorted(first["train"] + first["val"] + first["test"]) == ids
    assert all(part == sorted(part) for part in first.values())


def test_official_split_has_795_and_654_with_val_carved_from_train():
    ids = [f"{i:04d}" for i in range(1, 1450)]
    split = official_split(ids, OFFICIAL, seed=0, where=Path("x"))
    assert len(split["test"]) == 654
    assert len(split["train"]) + len(split["val"]) == 795
    assert len(split["val"]) == round(0.1 * 795)
    train = {f"{i:04d}" for i in nyu_tables()["train_ndxs"]}
    assert set(split["val"]) | set(split["train"]) == train
    assert official_split(ids, OFFICIAL, seed=0, where=Path("x")) == split


# --- the labelled .mat -------------------------------------------------------------------------


@pytest.fixture
def mat_file(tmp_path: Path) -> Path:
    return build_nyu_mat(tmp_path / "nyu_depth_v2_labeled.mat")


def test_mat_source_loads_valid_samples(mat_file: Path):
    source = NYUv2MatSource(mat_file, resolution=32, num_classes=13, split=RANDOM, seed=0)
    assert source.scene_names == ("bedroom", "kitchen", "office")
    assert source.class_names == NYU13_CLASSES
    assert _all_ids(source) == [f"{i:04d}" for i in range(1, 7)]
    sample = source.load("0004")
    validate_sample(sample, num_classes=13, num_scenes=3, resolution=32)
    assert sample.key == "nyu-0004"
    assert sample.meta == {"source": "nyuv2-mat", "id": "0004", "scene_name": "bedroom"}
    assert sample.scene == source.scene_names.index("bedroom")
    assert set(np.unique(sample.seg)) == {CEILING13, WALL13, FLOOR13, IGNORE_LABEL}
    assert sample.seg[1, 12] == IGNORE_LABEL and sample.seg[-1, 16] == FLOOR13


def test_mat_layout_is_transposed_back_to_image_order(mat_file: Path):
    """Red grows left to right, green and depth grow top to bottom, as in the builder's arrays."""
    sample = NYUv2MatSource(mat_file, 32, 40, RANDOM, 0).load("0001")
    red, green = sample.rgb[..., 0].astype(int), sample.rgb[..., 1].astype(int)
    assert (np.diff(red.mean(axis=0)) > 0).all() and (np.diff(green.mean(axis=1)) > 0).all()
    assert (np.diff(sample.depth.mean(axis=1)) > 0).all()
    assert sample.depth.min() > 1.9 and sample.depth.max() < 3.0
    # depth grows downwards: a ceiling-like surface, seen from below, faces down (+y), no x tilt
    normals = sample.normal[4:-4, 4:-4]
    assert np.allclose(np.linalg.norm(normals, axis=-1), 1.0, atol=1e-4)
    assert np.abs(normals[..., 0]).max() < 1e-3 and (normals[..., 1] > 0.2).all()


def test_mat_official_split_uses_the_official_indices(mat_file: Path):
    source = NYUv2MatSource(mat_file, 32, 13, OFFICIAL, 0)
    splits = source.split_ids()
    assert splits["test"] == ["0001", "0002"]  # testNdxs starts 1, 2, 9, ...
    assert sorted(splits["train"] + splits["val"]) == ["0003", "0004", "0005", "0006"]


def test_mat_source_pickles_and_reopens_lazily(mat_file: Path):
    source = NYUv2MatSource(mat_file, 32, 13, RANDOM, 0)
    expected = source.load("0002")  # opens the HDF5 handle in this process
    clone = pickle.loads(pickle.dumps(source))
    assert clone._h5 is None
    assert np.array_equal(clone.load("0002").depth, expected.depth)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        keys = pool.map(_load_key, [(source, i) for i in ("0001", "0005", "0006")])
    assert keys == ["nyu-0001", "nyu-0005", "nyu-0006"]
    source.close()


def _load_key(job: tuple) -> str:
    source, item_id = job
    return source.load(item_id).key


def test_a_folder_given_as_the_mat_file_is_named_as_a_folder(tmp_path: Path):
    with pytest.raises(SourceError, match=r"is a folder, not the NYUv2 labelled .mat file"):
        NYUv2MatSource(tmp_path, 32, 13, RANDOM, 0)


def test_mat_missing_file(tmp_path: Path):
    missing = tmp_path / "nope.mat"
    with pytest.raises(SourceError, match=re.escape(str(missing))):
        NYUv2MatSource(missing, 32, 13, RANDOM, 0)


def test_mat_not_hdf5(tmp_path: Path):
    fake = tmp_path / "fake.mat"
    fake.write_bytes(b"MATLAB 5.0 MAT-file" + bytes(500))
    with pytest.raises(SourceError, match=re.escape(str(fake)) + ".*HDF5"):
        NYUv2MatSource(fake, 32, 13, RANDOM, 0)


def test_mat_truncated(mat_file: Path):
    truncate(mat_file, keep=0.6)
    with pytest.raises(SourceError, match=re.escape(str(mat_file))):
        source = NYUv2MatSource(mat_file, 32, 13, RANDOM, 0)
        for item_id in _all_ids(source):
            source.load(item_id)


@pytest.mark.parametrize("dataset", ["images", "depths", "labels"])
def test_mat_corrupt_image_data(mat_file: Path, dataset: str):
    corrupt_chunk(mat_file, dataset, index=4)
    source = NYUv2MatSource(mat_file, 32, 13, RANDOM, 0)
    source.load("0004")
    with pytest.raises(SourceError, match=re.escape(f"{mat_file}: cannot read labelled image 5")):
        source.load("0005")


@pytest.mark.parametrize("dataset", ["images", "depths", "labels", "sceneTypes"])
def test_mat_missing_dataset(tmp_path: Path, dataset: str):
    path = build_nyu_mat(tmp_path / "partial.mat", skip=dataset)
    with pytest.raises(SourceError, match=re.escape(f"{path}: missing dataset") + ".*" + re.escape(dataset)):
        NYUv2MatSource(path, 32, 13, RANDOM, 0)


def test_mat_wrong_shape_and_dtype(tmp_path: Path):
    path = build_nyu_mat(tmp_path / "shape.mat")
    with h5py.File(path, "r+") as handle:
        del handle["depths"]
        handle["depths"] = np.zeros((6, 60, 48), np.float32)
    with pytest.raises(SourceError, match=re.escape(f"{path}: 'depths' must be float 6 x 64 x 48")):
        NYUv2MatSource(path, 32, 13, RANDOM, 0)
    path = build_nyu_mat(tmp_path / "dtype.mat")
    with h5py.File(path, "r+") as handle:
        labels = handle["labels"][()]
        del handle["labels"]
        handle["labels"] = labels.astype(np.float32)
    with pytest.raises(SourceError, match=re.escape(f"{path}: 'labels' must be unsigned int")):
        NYUv2MatSource(path, 32, 13, RANDOM, 0)


def test_mat_raw_label_above_894(tmp_path: Path):
    arrays = nyu_arrays(6)
    arrays["labels"][2, 10, 10] = 900
    path = build_nyu_mat(tmp_path / "labels.mat", arrays=arrays)
    source = NYUv2MatSource(path, 32, 13, RANDOM, 0)
    source.load("0002")
    with pytest.raises(SourceError, match=re.escape(f"{path}: labelled image 3 has raw label 900")):
        source.load("0003")


def test_mat_nan_depth_is_bad_input(tmp_path: Path):
    arrays = nyu_arrays(6)
    arrays["depth"][4, 7, 7] = np.nan
    path = build_nyu_mat(tmp_path / "nan.mat", arrays=arrays)
    source = NYUv2MatSource(path, 32, 13, RANDOM, 0)
    with pytest.raises(SourceError, match=re.escape(f"{path}: depth of labelled image 5 holds NaN")):
        source.load("0005")


def test_mat_unknown_item(mat_file: Path):
    with pytest.raises(SourceError, match="0007"):
        NYUv2MatSource(mat_file, 32, 13, RANDOM, 0).load("0007")


# --- the PNG folder ----------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return build_nyu_folder(tmp_path / "nyu")


@pytest.mark.parametrize("num_classes", [13, 40])
def test_folder_source_loads_valid_samples(tmp_path: Path, num_classes: int):
    root = build_nyu_folder(tmp_path / "nyu", num_classes=num_classes)
    source = NYUv2FolderSource(root, 48, num_classes, RANDOM, 0)
    assert source.scene_names == ("kitchen", "office")
    assert _all_ids(source) == ["0001", "0002", "0003", "0010"]
    for item_id in _all_ids(source):
        sample = source.load(item_id)
        validate_sample(sample, num_classes=num_classes, num_scenes=2, resolution=48)
        assert sample.key == f"nyu-{item_id}" and sample.meta["id"] == item_id
    sample = source.load("0010")
    assert sample.meta["scene_name"] == "kitchen" and sample.scene == 0
    floor = NYU13_CLASSES.index("floor") if num_classes == 13 else 1
    assert sample.seg[-1, 20] == floor and sample.seg[2, 18] == IGNORE_LABEL
    assert sample.depth.min() == pytest.approx(2.3, abs=1e-3)  # 4th image: 2.0 m + 0.1 m * 3


def test_folder_official_split(folder: Path):
    splits = NYUv2FolderSource(folder, 32, 13, OFFICIAL, 0).split_ids()
    assert splits["test"] == ["0001", "0002"]
    assert sorted(splits["train"] + splits["val"]) == ["0003", "0010"]


def test_folder_official_split_without_train_images(tmp_path: Path):
    root = build_nyu_folder(tmp_path / "nyu", indices=(1, 2, 9), scenes=("a", "b", "c"))
    with pytest.raises(ParamsError, match=re.escape("data.split.scheme='official'")):
        NYUv2FolderSource(root, 32, 13, OFFICIAL, 0)
    assert NYUv2FolderSource(root, 32, 13, RANDOM, 0).split_ids()["train"]


def test_folder_source_pickles(folder: Path):
    source = NYUv2FolderSource(folder, 32, 13, RANDOM, 0)
    clone = pickle.loads(pickle.dumps(source))
    assert np.array_equal(clone.load("0003").normal, source.load("0003").normal)


def test_folder_missing(tmp_path: Path):
    with pytest.raises(SourceError, match=re.escape(str(tmp_path / "absent"))):
        NYUv2FolderSource(tmp_path / "absent", 32, 13, RANDOM, 0)


def test_folder_missing_label_subfolder(folder: Path):
    with pytest.raises(SourceError, match=re.escape(str(folder / "label40"))):
        NYUv2FolderSource(folder, 32, 40, RANDOM, 0)


def test_folder_missing_companion_file(folder: Path):
    (folder / "depth" / "0003.png").unlink()
    with pytest.raises(SourceError, match=re.escape(str(folder / "depth" / "0003.png"))):
        NYUv2FolderSource(folder, 32, 13, RANDOM, 0)


def test_folder_truncated_png(folder: Path):
    broken = truncate(folder / "rgb" / "0002.png")
    source = NYUv2FolderSource(folder, 32, 13, RANDOM, 0)
    with pytest.raises(SourceError, match=re.escape(f"{broken}: cannot decode")):
        source.load("0002")


def test_folder_mismatched_sizes(folder: Path):
    write_png(folder / "depth" / "0003.png", np.full((40, 64), 2000, np.uint16))
    with pytest.raises(
        SourceError, match=re.escape("sizes differ") + ".*" + re.escape("depth/0003.png is 64x40")
    ):
        NYUv2FolderSource(folder, 32, 13, RANDOM, 0).load("0003")


def test_folder_label_above_num_classes(folder: Path):
    labels = np.ones((48, 64), np.uint8)
    labels[3, 3] = 14
    path = write_png(folder / "label13" / "0010.png", labels)
    with pytest.raises(SourceError, match=re.escape(f"{path}: label 14 outside 0..13")):
        NYUv2FolderSource(folder, 32, 13, RANDOM, 0).load("0010")


def test_folder_8bit_depth_is_rejected(folder: Path):
    path = write_png(folder / "depth" / "0001.png", np.full((48, 64), 20, np.uint8))
    with pytest.raises(SourceError, match=re.escape(f"{path}: expected a 16-bit")):
        NYUv2FolderSource(folder, 32, 13, RANDOM, 0).load("0001")


def test_folder_index_missing_from_scenes_csv(folder: Path):
    csv_path = folder / "scenes.csv"
    csv_path.write_text("index,scene\n0001,kitchen\n0002,office\n0010,office\n")
    with pytest.raises(SourceError, match=re.escape(f"{csv_path}: no scene for index 0003")):
        NYUv2FolderSource(folder, 32, 13, RANDOM, 0)


# --- the real nyuv2-mini -------------------------------------------------------------------------


def test_real_nyuv2_mini_at_64():
    if not NYUV2_MINI.is_dir():
        pytest.skip("../shared/datasets/nyuv2-mini is not present")
    source = NYUv2FolderSource(NYUV2_MINI, 64, 13, RANDOM, 0)
    assert source.scene_names == ("kitchen", "office")
    ids = _all_ids(source)
    assert len(ids) == 10
    floor_up = []
    for item_id in ids:
        sample = validate_sample(source.load(item_id), num_classes=13, num_scenes=2, resolution=64)
        valid = sample.depth > 0
        assert valid.mean() > 0.99
        assert sample.depth[valid].min() >= 0.5 and sample.depth[valid].max() <= 10.0
        length = np.linalg.norm(sample.normal, axis=-1)
        assert np.allclose(length[valid], 1.0, atol=1e-3)
        assert set(np.unique(sample.seg)) <= {*range(13), IGNORE_LABEL}
        floor = (sample.seg == FLOOR13) & valid
        if floor.sum() > 20:
            floor_up.append(sample.normal[floor][:, 1].mean())
    assert floor_up and max(floor_up) < -0.5  # floors point up: negative y in the camera frame
