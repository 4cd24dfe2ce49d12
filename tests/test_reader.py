"""Reading shards: tensors of the right types, every sample once across workers and ranks, clear errors."""

from __future__ import annotations

import io
import shutil
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from pipeline.config import load_params
from pipeline.data.codec import DecodeError, decode_png, encode_png
from pipeline.data.manifest import sample_byte_ranges
from pipeline.data.reader import ShardDataset, collate, epoch_batches, list_shards
from pipeline.data.sharding import shard_dataset
from pipeline.errors import ShardError
from tests._sources import GradientSource


@pytest.fixture(scope="module")
def shard_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "real"
    params = load_params(
        None, [f"shard.out={out}", "data.resolution=32", "shard.samples_per_shard=3", "shard.workers=0"]
    )
    shard_dataset(params, source=GradientSource(train=12), progress=False)
    return out


def _keys(dataset, workers=0):
    # forkserver: workers start from a clean process, whatever threads this test process holds
    # (an in-process Prefect test server leaves event-loop threads that break forked workers).
    context = "forkserver" if workers else None
    loader = DataLoader(dataset, batch_size=None, num_workers=workers, multiprocessing_context=context)
    return [item["key"] for item in loader]


def test_decodes_to_typed_tensors(shard_set):
    item = next(iter(ShardDataset(shard_set, "train")))
    assert item["rgb"].shape == (3, 32, 32) and item["rgb"].dtype == torch.float32
    assert item["rgb"].min() >= 0.0 and item["rgb"].max() <= 1.0
    assert item["seg"].shape == (32, 32) and item["seg"].dtype == torch.long
    assert int(item["seg"][0, 0]) == 255
    assert item["depth"].shape == (1, 32, 32) and item["depth_valid"].all()
    assert item["normal"].shape == (3, 32, 32)
    assert torch.allclose(item["normal"].norm(dim=0), torch.ones(32, 32), atol=1e-3)
    assert item["scene"].dtype == torch.long
    expected = GradientSource().load(item["meta"]["id"])
    assert torch.equal(item["seg"], torch.from_numpy(expected.seg).long())
    assert torch.allclose(item["depth"][0], torch.from_numpy(expected.depth), atol=1e-2)
    pm1 = next(iter(ShardDataset(shard_set, "train", rgb_range="pm1")))
    assert torch.allclose(pm1["rgb"], item["rgb"] * 2 - 1)


def test_two_workers_read_every_sample_once(shard_set):
    keys = _keys(ShardDataset(shard_set, "train", shuffle=True, seed=1), workers=2)
    assert len(keys) == 12 and len(set(keys)) == 12


def test_ranks_partition_the_split(shard_set):
    per_rank = [_keys(ShardDataset(shard_set, "train", rank=r, world_size=2, shuffle=True)) for r in range(2)]
    assert not set(per_rank[0]) & set(per_rank[1])
    assert len(per_rank[0]) + len(per_rank[1]) == 12


def test_shuffle_is_seeded_and_changes_with_epoch(shard_set):
    first = ShardDataset(shard_set, "train", shuffle=True, seed=7, shuffle_buffer=8)
    again = ShardDataset(shard_set, "train", shuffle=True, seed=7, shuffle_buffer=8)
    assert _keys(first) == _keys(again)
    epoch0 = _keys(first)
    first.set_epoch(1)
    assert _keys(first) != epoch0 and sorted(_keys(first)) == sorted(epoch0)


def test_batches_collate(shard_set):
    loader = DataLoader(ShardDataset(shard_set, "val"), batch_size=2, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["rgb"].shape == (2, 3, 32, 32) and batch["seg"].shape == (2, 32, 32)
    assert len(batch["key"]) == 2


def test_fewer_shards_than_readers_is_an_error(shard_set):
    dataset = ShardDataset(shard_set, "val")
    assert len(dataset.shards) == 2
    with pytest.raises(ShardError, match=r"2 shard\(s\), fewer than the 3 readers"):
        _keys(ShardDataset(shard_set, "val", rank=0, world_size=3))


def test_missing_split_and_folder(shard_set, tmp_path):
    with pytest.raises(ShardError, match="no shards for split 'nope'"):
        list_shards(shard_set, "nope")
    with pytest.raises(ShardError, match="does not exist"):
        ShardDataset(tmp_path / "missing", "train")


def test_truncated_shard_names_the_file(shard_set, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(shard_set, broken)
    shard = broken / "test-000000.tar"
    shard.write_bytes(shard.read_bytes()[:1500])
    with pytest.raises(ShardError, match=r"test-000000\.tar"):
        _keys(ShardDataset(broken, "test"))


def test_a_shard_cut_at_a_sample_boundary_is_caught_against_the_manifest(shard_set, tmp_path):
    broken = tmp_path / "short"
    shutil.copytree(shard_set, broken)
    shard = broken / "train-000000.tar"
    offsets = sorted(sample_byte_ranges(shard).values())
    assert len(offsets) >= 2
    with tarfile.open(shard) as tar:  # rewrite the tar without its last sample: a clean, valid tar
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    last_key = members[-1][0].name.split(".", 1)[0]
    with tarfile.open(shard, "w", format=tarfile.USTAR_FORMAT) as tar:
        for member, data in members:
            if member.name.split(".", 1)[0] != last_key:
                tar.addfile(member, io.BytesIO(data))
    with pytest.raises(
        ShardError, match=r"train-000000\.tar holds \d+ samples but the manifest .* records \d+"
    ):
        _keys(ShardDataset(broken, "train"))
    (broken / "train-000001.tar").unlink()
    with pytest.raises(ShardError, match=r"shard\(s\) \['train-000001.tar'\] are in the manifest but not"):
        ShardDataset(broken, "train")


def test_corrupt_png_names_file_and_key(shard_set, tmp_path):
    broken = tmp_path / "corrupt"
    shutil.copytree(shard_set, broken)
    shard = broken / "test-000001.tar"
    data = bytearray(shard.read_bytes())
    start = data.find(b"\x89PNG")
    data[start + 40 : start + 80] = b"\0" * 40
    shard.write_bytes(bytes(data))
    with pytest.raises(ShardError, match=r"test-000001.tar: sample 'grad-\d+': .*PNG"):
        _keys(ShardDataset(broken, "test"))


def test_an_epoch_s_batches_are_known_from_the_manifest_before_reading(shard_set):
    dataset = ShardDataset(shard_set, "train")
    assert dataset.samples_per_epoch() == 12 == len(_keys(dataset))
    assert epoch_batches(dataset, 5) == 2 and epoch_batches(dataset, 4, world_size=2) == 1
    assert epoch_batches(object(), 4) is None


@pytest.mark.parametrize(
    ("array", "mode", "message"),
    [
        (np.zeros((4, 4, 4), np.uint8), "RGB", r"4 channel\(s\) of uint8, expected RGB"),
        (np.zeros((4, 4), np.uint16), "L", r"1 channel\(s\) of uint16, expected L"),
        (np.zeros((4, 4, 3), np.uint8), "L", r"3 channel\(s\) of uint8, expected L"),
    ],
)
def test_a_png_of_another_layout_is_refused_not_converted(array, mode, message):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    with pytest.raises(DecodeError, match=message):
        decode_png(buffer.getvalue(), mode)


def test_png_decoding_is_exact_and_refuses_truncated_or_empty_data():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    data = encode_png(rgb)
    assert np.array_equal(decode_png(data, "RGB"), rgb)  # channel order and values as written
    assert np.array_equal(decode_png(encode_png(rgb[..., 0]), "L"), rgb[..., 0])
    for broken in (data[:-1], data[: len(data) // 2], b""):
        with pytest.raises(DecodeError, match="PNG"):
            decode_png(broken, "RGB")
