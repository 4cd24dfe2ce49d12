"""The shard writer: reproducible bytes, correct splits, manifest byte ranges, clear errors."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.config import load_params
from pipeline.data.codec import decode_fields
from pipeline.data.manifest import read_manifest
from pipeline.data.sharding import shard_bounds, shard_dataset, split_labelled
from pipeline.errors import OutputExistsError, SampleError
from stages.cli import main as mgm_main
from tests._files import file_hashes
from tests._sources import GradientSource

REPO_ROOT = Path(__file__).resolve().parents[1]


def _params(out, **sets):
    overrides = [f"shard.out={out}", "data.resolution=32", "shard.samples_per_shard=4", "shard.workers=0"]
    overrides += [f"{key}={value}" for key, value in sets.items()]
    return load_params(None, overrides)


def test_same_params_give_identical_bytes(tmp_path):
    first = tmp_path / "a"
    second = tmp_path / "b"
    shard_dataset(_params(first), source=GradientSource(), progress=False)
    shard_dataset(_params(second, **{"shard.workers": 2}), source=GradientSource(), progress=False)
    assert file_hashes(first) == file_hashes(second)
    assert "manifest.parquet" in file_hashes(first)


def test_label_fraction_splits_train_into_train_and_weak(tmp_path):
    out = tmp_path / "real"
    summary = shard_dataset(
        _params(out, **{"data.label_fraction": 0.25}), source=GradientSource(), progress=False
    )
    counts = {split: info["samples"] for split, info in summary["splits"].items()}
    assert counts == {"train": 3, "weak": 9, "val": 4, "test": 4, "reference": 0}  # a source without one
    manifest = read_manifest(out).to_pylist()
    train_ids = {row["id"] for row in manifest if row["split"] == "train"}
    weak_ids = {row["id"] for row in manifest if row["split"] == "weak"}
    assert not train_ids & weak_ids
    assert train_ids | weak_ids == {str(i) for i in range(12)}
    assert sorted(p.name for p in out.glob("weak-*.tar")) == [
        "weak-000000.tar",
        "weak-000001.tar",
        "weak-000002.tar",
    ]


def test_split_labelled_is_seeded_and_keeps_order():
    ids = [str(i) for i in range(20)]
    labelled, weak = split_labelled(ids, 0.5, seed=3)
    assert labelled == split_labelled(ids, 0.5, seed=3)[0]
    assert labelled != split_labelled(ids, 0.5, seed=4)[0]
    assert len(labelled) == 10 and labelled == sorted(labelled, key=int) and weak == sorted(weak, key=int)
    assert split_labelled(ids, 1.0, seed=0) == (ids, [])


def test_shard_bounds_cover_every_sample_evenly():
    assert shard_bounds(10, 4, 2) == [(0, 3), (3, 7), (7, 10)]
    assert shard_bounds(10, 4, 5) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert shard_bounds(3, 256, 2) == [(0, 2), (2, 3)]
    assert shard_bounds(1, 256, 2) == [(0, 1)]
    assert shard_bounds(0, 4, 2) == []


def test_manifest_byte_ranges_point_at_each_sample(tmp_path):
    out = tmp_path / "real"
    shard_dataset(_params(out), source=GradientSource(), progress=False)
    table = pq.read_table(out / "manifest.parquet")
    assert table.column_names == [
        "shard",
        "key",
        "split",
        "source",
        "id",
        "scene",
        "scene_name",
        "offset",
        "size",
    ]
    for row in table.to_pylist():
        data = (out / row["shard"]).read_bytes()[row["offset"] : row["offset"] + row["size"]]
        with tarfile.open(fileobj=io.BytesIO(data + b"\0" * 1024)) as tar:
            record = {m.name.split(".", 1)[1]: tar.extractfile(m).read() for m in tar}
        names = {m for m in record}
        assert names == {"rgb.png", "seg.png", "depth.npy", "normal.npy", "scene.cls", "meta.json"}
        fields = decode_fields(record)
        assert fields["scene"] == row["scene"]
        assert fields["meta"]["split"] == row["split"] and fields["meta"]["id"] == row["id"]


def test_summary_counts_scenes_and_pixel_frequencies(tmp_path):
    summary = shard_dataset(_params(tmp_path / "real"), source=GradientSource(), progress=False)
    assert summary["scene_names"] == ["alpha", "beta", "gamma"]
    assert summary["splits"]["train"]["scenes"] == {"alpha": 4, "beta": 4, "gamma": 4}
    frequencies = summary["pixel_frequency"]
    assert set(frequencies) == set(summary["class_names"])
    assert sum(frequencies.values()) + summary["ignore_fraction"] == pytest.approx(1.0, abs=1e-5)
    assert summary["ignore_fraction"] == pytest.approx(4 / (32 * 32), abs=1e-6)


def test_bad_sample_names_key_and_keeps_earlier_output(tmp_path):
    out = tmp_path / "real"
    shard_dataset(_params(out), source=GradientSource(), progress=False)
    before = file_hashes(out)
    with pytest.raises(SampleError, match=r"sample 'grad-01002': seg holds label 77"):
        shard_dataset(_params(out), source=GradientSource(bad="1002"), progress=False)
    assert file_hashes(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["real"]


SOURCE_ERROR_MID_SHARD = """
import gc, tempfile
from pathlib import Path
from tests._sources import GradientSource
from pipeline.data.sharding import write_split, _SplitStats
from pipeline.errors import SampleError
source = GradientSource(train=6)
samples = [source.load(i) for i in source.split_ids()["train"]]
def check(sample, seen=[0]):
    seen[0] += 1
    if seen[0] == 3:  # the tar stream's buffer holds the first samples' unwritten bytes
        raise SampleError("deliberate")
    return sample
try:
    stats = _SplitStats(list("abcdef"), 13)
    write_split("train", samples, 6, Path(tempfile.mkdtemp()), [(0, 6)], check, stats, progress=False)
except SampleError as err:
    print("error:", err)
gc.collect()
"""


def test_a_source_error_mid_shard_leaves_no_finaliser_traceback():
    """shard.workers=0: the error used to be followed by tarfile's "Exception ignored ... write to
    closed file" (its stream, left open, flushed into the already closed file when collected)."""
    result = subprocess.run(
        [sys.executable, "-c", SOURCE_ERROR_MID_SHARD], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0 and "error: deliberate" in result.stdout
    assert "Exception ignored" not in result.stderr, result.stderr


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    out = tmp_path / "real"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--force"):
        shard_dataset(_params(out), source=GradientSource(), progress=False)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_user_folder_holding_a_summary_json_is_not_taken_for_a_shard_set(tmp_path, capsys):
    out = tmp_path / "u"
    out.mkdir()
    (out / "summary.json").write_text("{}")  # a common file name proves no ownership
    (out / "thesis.txt").write_text("x")
    (tmp_path / "none.yaml").write_text("{data: {resolution: 32, rooms: {train: 4, val: 2, test: 2}}}\n")
    code = mgm_main(["shard", "--params", str(tmp_path / "none.yaml"), "--set", f"shard.out={out}"])
    assert code == 2 and "was not written by this stage" in capsys.readouterr().err
    assert (out / "thesis.txt").read_text() == "x"
    shard_dataset(_params(tmp_path / "mine"), source=GradientSource(), progress=False)
    shard_dataset(_params(tmp_path / "mine"), source=GradientSource(), progress=False)  # its own: replaced


def test_real_nyuv2_mini_shards_through_the_stage(nyuv2_mini, tmp_path):
    out = tmp_path / "nyu"
    params = load_params(
        None,
        [
            "data.source=nyuv2-folder",
            f"data.path={nyuv2_mini}",
            f"shard.out={out}",
            "shard.workers=2",
        ],
    )
    summary = shard_dataset(params, progress=False)
    assert sum(info["samples"] for info in summary["splits"].values()) == 10
    assert summary["scene_names"] == ["kitchen", "office"]
    assert len(summary["class_names"]) == 13
    assert summary["ignore_fraction"] > 0
    rows = read_manifest(out).to_pylist()
    assert sorted(row["id"] for row in rows) == [
        "0001",
        "0002",
        "0009",
        "0014",
        "0015",
        "0016",
        "0017",
        "0018",
        "0021",
        "0028",
    ]
