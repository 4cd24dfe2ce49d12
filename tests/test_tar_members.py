"""The light tar reader gives exactly what tarfile/webdataset give, and refuses damaged bytes."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from webdataset.tariterators import tarfile_samples

from pipeline.data.codec import decode_npy
from pipeline.data.reader import ShardDataset
from pipeline.data.tar_members import TarFormatError, iter_members, iter_samples
from tests._tiny import make_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return make_shards(tmp_path_factory.mktemp("tar") / "real", train=6, per_shard=3)


def test_samples_equal_webdatasets_for_every_shard(shards):
    for shard in sorted(shards.glob("*.tar")):
        ours = list(iter_samples(shard.read_bytes()))
        theirs = [
            {k: v for k, v in r.items() if k != "__url__"} for r in tarfile_samples([{"url": str(shard)}])
        ]
        assert ours == theirs and ours


def _tar(members, fmt=tarfile.USTAR_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_pax_long_names_and_damage():
    long_name = "k" * 120 + ".rgb.png"
    assert list(iter_members(_tar([(long_name, b"x" * 700)], tarfile.PAX_FORMAT))) == [
        (long_name, b"x" * 700)
    ]
    data = bytearray(_tar([("a.rgb.png", b"12345"), ("a.scene.cls", b"3")]))
    with pytest.raises(TarFormatError, match="without an end-of-archive block"):
        list(iter_members(bytes(data[:1024])))  # cut after the first member: a clean-looking short tar
    with pytest.raises(TarFormatError, match="needs 5 bytes"):
        list(iter_members(bytes(data[:514])))
    data[10] ^= 0xFF
    with pytest.raises(TarFormatError, match="bad tar header checksum at byte 0"):
        list(iter_members(bytes(data)))
    link = io.BytesIO()
    with tarfile.open(fileobj=link, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo("a.lnk")
        info.type, info.linkname = tarfile.SYMTYPE, "elsewhere"
        tar.addfile(info)
    with pytest.raises(TarFormatError, match="unsupported tar member type b'2'"):
        list(iter_members(link.getvalue()))


def test_a_reader_without_dense_labels_decodes_none(shards):
    item = next(iter(ShardDataset(shards, "train", dense=())))
    assert {"rgb", "scene", "key", "meta"} == set(item)
    item = next(iter(ShardDataset(shards, "train", dense=("depth",))))
    assert {"depth", "depth_valid"} <= set(item) and "seg" not in item and "normal" not in item


@pytest.mark.parametrize(
    "array",
    [np.arange(12, dtype=np.float16).reshape(3, 4), np.asfortranarray(np.ones((2, 3))), np.float32(2.5)],
)
def test_fast_npy_decoding_equals_np_load(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    decoded = decode_npy(buffer.getvalue())
    assert decoded.dtype == np.asarray(array).dtype and np.array_equal(decoded, array)
