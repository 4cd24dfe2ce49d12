"""The mixed real/weak loader: exact ratio, even spread, seeded draws, no repeats across readers, errors."""

from __future__ import annotations

import multiprocessing
import shutil
from collections import Counter

import pytest
import torch
from torch.utils.data import DataLoader

from pipeline.config import load_params
from pipeline.data.manifest import read_manifest
from pipeline.data.mixing import MixedShardDataset, apportion, weak_count, weak_slots
from pipeline.data.reader import ShardDataset, collate
from pipeline.data.sharding import shard_dataset
from pipeline.errors import ParamsError, ShardError
from pipeline.synthesis import synthesize
from pipeline.tasks.losses import MultiTaskLoss, depth_loss, normal_loss, seg_loss
from pipeline.train.gan.loop import train_gan
from tests._sources import GradientSource
from tests._tiny import gan_params, gan_shards

# forkserver workers fork from a server that has already imported the loader (and torch), so each
# 2-worker loader below starts in well under a second instead of importing torch per worker.
multiprocessing.set_forkserver_preload(["pipeline.data.mixing"])


class _WideGradientSource(GradientSource):
    """GradientSource with room for more than 1,000 training ids."""

    def split_ids(self) -> dict[str, list[str]]:
        offsets = {"train": 0, "val": 100_000, "test": 200_000}
        return {split: [str(offsets[split] + i) for i in range(n)] for split, n in self.counts.items()}


def _shards(folder, train: int, label_fraction: float, per_shard: int, resolution: int = 32):
    params = load_params(
        None,
        [
            f"shard.out={folder}",
            f"data.resolution={resolution}",
            f"data.label_fraction={label_fraction}",
            f"shard.samples_per_shard={per_shard}",
            "shard.workers=0",
        ],
    )
    shard_dataset(params, source=_WideGradientSource(resolution=resolution, train=train), progress=False)
    return folder


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """800 labelled (8 shards) and 800 weak (8 shards) training samples at 32 px."""
    return _shards(tmp_path_factory.mktemp("mix") / "big", 1600, 0.5, 100)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """24 labelled (6 shards) and 36 weak (9 shards) training samples at 32 px."""
    return _shards(tmp_path_factory.mktemp("mix") / "small", 60, 0.4, 4)


def _loader(dataset, workers: int = 0, batch_size: int | None = None) -> DataLoader:
    # forkserver: workers start from a clean process, as in test_reader.py
    context = "forkserver" if workers else None
    collate_fn = collate if batch_size else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        num_workers=workers,
        collate_fn=collate_fn,
        multiprocessing_context=context,
    )


def _stream(dataset, workers: int = 0, batch_size: int = 16) -> list[tuple[str, bool]]:
    """(key, labelled) of every sample in the order a training loop sees them."""
    out: list[tuple[str, bool]] = []
    for batch in _loader(dataset, workers, batch_size):
        out += zip(batch["key"], batch["labelled"].tolist())
    return out


def _split_keys(folder, split: str) -> set[str]:
    table = read_manifest(folder)
    return {
        k for k, s in zip(table.column("key").to_pylist(), table.column("split").to_pylist()) if s == split
    }


def _check_windows(stream: list[tuple[str, bool]], ratio: float, window: int = 1000) -> None:
    flags = [0 if labelled else 1 for _, labelled in stream]
    weak = sum(flags[:window])
    for start in range(len(flags) - window + 1):
        if start:
            weak += flags[start + window - 1] - flags[start - 1]
        measured = weak / (window - weak)
        assert abs(measured - ratio) <= 0.02 * ratio, f"window at {start}: ratio {measured:.4f}"


def test_rounding_apportioning_and_spreading():
    assert weak_count(0.1, 25) == 3 and weak_count(1.25, 12) == 15 and weak_count(0.3, 5) == 2
    assert weak_count(0.0, 800) == 0 and weak_count(0.5, 801) == 401
    shares = apportion(0.3, [7, 5, 6, 6])
    assert sum(shares) == weak_count(0.3, 24) == 7
    assert all(abs(share - 0.3 * count) < 1 for share, count in zip(shares, [7, 5, 6, 6]))
    flags = list(weak_slots(10, 4))
    assert len(flags) == 14 and sum(flags) == 4
    assert "".join("w" if weak else "l" for weak in flags) == "lllwllwlllwllw"


def test_ratio_is_exact_per_epoch_and_holds_in_every_window(big):
    train, weak = _split_keys(big, "train"), _split_keys(big, "weak")
    single = _stream(MixedShardDataset(big, big, "weak", 0.5, seed=4))
    assert Counter(labelled for _, labelled in single) == {True: 800, False: 400}
    assert {k for k, lab in single if lab} == train and {k for k, lab in single if not lab} <= weak
    _check_windows(single, 0.5)

    two_workers = _stream(MixedShardDataset(big, big, "weak", 1.0, seed=4), workers=2)
    labelled = [k for k, lab in two_workers if lab]
    drawn = [k for k, lab in two_workers if not lab]
    assert sorted(labelled) == sorted(train)
    assert len(drawn) == 800 and set(drawn) == weak  # ratio 1.0 draws the whole pool, each sample once
    _check_windows(two_workers, 1.0)


def test_weak_items_equal_the_stored_samples_with_ignore_targets(big):
    stored = {item["key"]: item for item in ShardDataset(big, "weak")}
    weak_items = [item for item in MixedShardDataset(big, big, "weak", 0.02) if not item["labelled"]]
    assert len(weak_items) == 16
    for item in weak_items:
        original = stored[item["key"]]
        assert torch.equal(item["rgb"], original["rgb"]) and int(item["scene"]) == int(original["scene"])
        assert item["meta"] == original["meta"]
        assert (item["seg"] == 255).all() and not item["depth_valid"].any()
        assert not item["normal"].any() and not item["depth"].any()


def test_draw_is_seeded_and_changes_with_epoch(small):
    first = MixedShardDataset(small, small, "weak", 0.5, seed=7)
    again = MixedShardDataset(small, small, "weak", 0.5, seed=7)
    epoch0 = _stream(first, batch_size=4)
    assert epoch0 == _stream(again, batch_size=4)
    first.set_epoch(1)
    epoch1 = _stream(first, batch_size=4)
    weak0 = [k for k, lab in epoch0 if not lab]
    weak1 = [k for k, lab in epoch1 if not lab]
    assert len(weak0) == len(weak1) == 12 and set(weak0) != set(weak1)
    other_seed = _stream(MixedShardDataset(small, small, "weak", 0.5, seed=8), batch_size=4)
    assert [k for k, lab in other_seed if not lab] != weak0


def test_two_ranks_of_two_workers_share_out_the_draw(small):
    train, weak = _split_keys(small, "train"), _split_keys(small, "weak")
    labelled: list[str] = []
    drawn: list[str] = []
    for rank in range(2):
        dataset = MixedShardDataset(small, small, "weak", 1.25, seed=1, rank=rank, world_size=2)
        dataset.set_epoch(3)
        for key, is_labelled in _stream(dataset, workers=2, batch_size=2):
            (labelled if is_labelled else drawn).append(key)
    assert sorted(labelled) == sorted(train)
    assert len(drawn) == weak_count(1.25, 24) == 30 and len(set(drawn)) == 30 and set(drawn) <= weak


def test_ratio_zero_gives_the_real_only_batches(small, tmp_path):
    mixed = MixedShardDataset(small, tmp_path / "no-weak-set", "synthetic", 0.0, seed=5)
    real = ShardDataset(small, "train", shuffle=True, seed=5)
    assert mixed.pool is None and mixed.weak_count == 0
    for epoch in (0, 1):
        mixed.set_epoch(epoch)
        real.set_epoch(epoch)
        pairs = list(zip(_loader(mixed, batch_size=4), _loader(real, batch_size=4), strict=True))
        assert len(pairs) == 6
        for got, want in pairs:
            assert got.pop("labelled").all()
            assert got.keys() == want.keys()
            for name, value in want.items():
                assert (
                    torch.equal(got[name], value) if isinstance(value, torch.Tensor) else got[name] == value
                )
    with_workers = [b["key"] for b in _loader(mixed, workers=2, batch_size=4)]
    assert with_workers == [b["key"] for b in _loader(real, workers=2, batch_size=4)]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """A real shard set (12 train) and a 30-image synthetic set from a 1-step tiny SAGAN."""
    root = tmp_path_factory.mktemp("synthetic-mix")
    gan_shards(root)
    train_gan(gan_params(root, "gan.steps=1"), progress=False)
    synthesize(gan_params(root, "synthesize.count=30", "synthesize.fid_split=none"), progress=False)
    return root


def test_synthetic_weak_set_mixes_and_dense_losses_skip_it(synthetic):
    real, weak = synthetic / "real", synthetic / "synthetic" / "gan"
    stored = {item["key"]: item for item in ShardDataset(weak, "synthetic")}
    batches = list(_loader(MixedShardDataset(real, weak, "synthetic", 2.0, seed=2), batch_size=6))
    assert [len(b["key"]) for b in batches] == [6, 6, 6, 6, 6, 6]
    mask = torch.cat([b["labelled"] for b in batches])
    assert int(mask.sum()) == 12 and int((~mask).sum()) == 24
    for batch in batches:
        assert batch["seg"].shape == (6, 32, 32) and batch["normal"].shape == (6, 3, 32, 32)
        for index in (~batch["labelled"]).nonzero().flatten().tolist():
            original = stored[batch["key"][index]]
            assert torch.equal(batch["rgb"][index], original["rgb"])
            assert int(batch["scene"][index]) == int(original["scene"])
    weak_only = {
        name: v[~batches[0]["labelled"]] for name, v in batches[0].items() if isinstance(v, torch.Tensor)
    }
    loss = MultiTaskLoss(
        ["seg", "depth", "normal"], {"seg": seg_loss, "depth": depth_loss, "normal": normal_loss}
    )
    outputs = {
        "seg": torch.randn(4, 13, 32, 32),
        "depth": torch.rand(4, 1, 32, 32),
        "normal": torch.randn(4, 3, 32, 32),
    }
    assert all(int(value.count) == 0 for value in loss.task_losses(outputs, weak_only).values())


def test_negative_or_non_finite_ratio_names_the_param(small):
    for ratio in (-0.25, float("nan"), float("inf")):
        with pytest.raises(ParamsError, match=r"mix\.synthetic_ratio"):
            MixedShardDataset(small, small, "weak", ratio)
    with pytest.raises(
        ParamsError, match=r"mix\.synthetic_ratio: Input should be greater than or equal to 0"
    ):
        load_params(None, ["mix.synthetic_ratio=-0.5"])


def test_missing_weak_set_names_the_path(small, tmp_path):
    missing = tmp_path / "synthetic" / "mgm"
    with pytest.raises(ShardError, match=rf"weak shard folder {missing} does not exist"):
        MixedShardDataset(small, missing, "synthetic", 0.5)
    with pytest.raises(ShardError, match="no shards for split 'synthetic'"):
        MixedShardDataset(small, small, "synthetic", 0.5)


def test_weak_pool_smaller_than_the_ratio_needs(small):
    with pytest.raises(
        ParamsError,
        match=rf"mix\.synthetic_ratio: 1\.6 needs 38 weak samples per epoch \(1\.6 x 24 labelled\), "
        rf"but split 'weak' of {small} holds only 36",
    ):
        MixedShardDataset(small, small, "weak", 1.6)
    assert MixedShardDataset(small, small, "weak", 1.5).weak_count == 36


def test_weak_set_of_another_resolution_or_scene_set(small, synthetic, tmp_path):
    with pytest.raises(ShardError, match=r"has scene_names \[.*\], the labelled set .* has \['alpha'"):
        MixedShardDataset(small, synthetic / "synthetic" / "gan", "synthetic", 0.5)
    larger = _shards(tmp_path / "64px", 20, 0.5, 10, resolution=64)
    with pytest.raises(
        ShardError, match=rf"weak set {larger} has resolution 64, the labelled set {small} has 32"
    ):
        MixedShardDataset(small, larger, "weak", 0.25)


def test_truncated_weak_shard_names_file_and_key(small, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(small, broken)
    for shard in sorted(broken.glob("weak-*.tar")):
        shard.write_bytes(shard.read_bytes()[:1024])
    with pytest.raises(ShardError, match=r"weak-0000\d\d\.tar: sample 'grad-\d+': .*byte range"):
        list(MixedShardDataset(broken, broken, "weak", 1.0))
