"""Interleave the labelled training shards with weakly labelled shards at a fixed ratio.

:class:`MixedShardDataset` yields, for each reader (rank x DataLoader worker), exactly the labelled
stream :class:`~pipeline.data.reader.ShardDataset` yields for that reader, with weak samples
(scene label only: synthetic images from ``synthesize`` or the real ``weak`` split) slotted in
between. Per epoch:

* ``round(ratio x labelled samples)`` weak samples are drawn (halves round up; the ratio is taken
  as the decimal number it prints as, so ``0.1 x 25`` is 2.5 and gives 3) by a permutation of the
  weak pool seeded by ``(seed, epoch)``: no weak sample is drawn twice within an epoch, and the
  draw changes from epoch to epoch;
* the draw is cut into consecutive slices, one per reader, sized in proportion to each reader's
  labelled count (cumulative rounding, so the slices add up exactly). Every reader computes every
  reader's shards and counts from the manifests, so the slices are disjoint across workers and ranks
  without any communication;
* each reader spreads its weak samples evenly through its labelled stream (Bresenham's line
  rule), so any run of consecutive samples holds the ratio to within one sample.

Weak samples are read by byte range from the weak set's ``manifest.parquet`` (one seek and read per
sample). Every item carries ``labelled`` (a 0-dim bool tensor, so the default
:func:`~pipeline.data.reader.collate` gives a B-long mask); weak items carry dense targets filled
with ignore values (``seg`` 255, ``depth`` 0 with ``depth_valid`` False, ``normal`` 0, each map
task the labelled shards carry 0 with ``<task>_valid`` False), so the
dense losses skip them and batches collate like real-only ones. At ratio 0 the weak set is never
opened and the batches equal the real-only loader's (plus the all-True ``labelled`` mask).
"""

from __future__ import annotations

import copy
import io
import math
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from pipeline.config import Params
from pipeline.data.codec import REQUIRED_FIELDS, DecodeError, decode_fields
from pipeline.data.dense_maps import MAP_TASKS, map_tasks_of
from pipeline.data.manifest import MANIFEST_NAME, read_manifest
from pipeline.data.reader import RgbRange, ShardDataset, list_shards, read_summary, to_tensors
from pipeline.data.schema import IGNORE_LABEL
from pipeline.errors import ParamsError, ShardError

RATIO_PARAM = "mix.synthetic_ratio"
_WEAK_SEED_TAG = 0x3A1C
_WEAK_FIELDS = ("__key__", *REQUIRED_FIELDS)  # weak samples: image, scene, meta (pixel labels unread)


@dataclass(frozen=True)
class WeakPool:
    """Where each weak sample lives: parallel lists in manifest order."""

    folder: Path
    split: str
    shards: tuple[str, ...]
    keys: tuple[str, ...]
    offsets: tuple[int, ...]
    sizes: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.keys)


def weak_count(ratio: float, labelled: int) -> int:
    """Weak samples for ``labelled`` labelled ones: ``ratio x labelled`` rounded, halves up."""
    exact = Fraction(repr(float(ratio))) * labelled
    return math.floor(exact + Fraction(1, 2))


def apportion(ratio: float, counts: Sequence[int]) -> list[int]:
    """Weak samples per reader, proportional to its labelled ``counts``, summing to
    ``weak_count(ratio, sum(counts))`` (cumulative rounding: each is within one of ``ratio x count``)."""
    shares, before, cumulative = [], 0, 0
    for count in counts:
        cumulative += count
        upto = weak_count(ratio, cumulative)
        shares.append(upto - before)
        before = upto
    return shares


def weak_slots(labelled: int, weak: int) -> Iterator[bool]:
    """``labelled + weak`` flags, True where a weak sample goes, spread evenly (Bresenham): every
    run of ``n`` consecutive flags holds ``n x weak / (labelled + weak)`` True ones, within one."""
    total = labelled + weak
    for position in range(total):
        yield (position + 1) * weak // total > position * weak // total


def check_ratio(ratio: float) -> float:
    """``ratio`` as a float; error naming ``mix.synthetic_ratio`` when it is negative or not finite."""
    value = float(ratio)
    if not math.isfinite(value) or value < 0:
        raise ParamsError(
            f"{RATIO_PARAM}: {ratio} must be a finite number >= 0 (weak samples per labelled one)"
        )
    return value


def samples_per_shard(dataset: ShardDataset) -> dict[str, int]:
    """Number of samples in each shard of the dataset's split, as its manifest records them (read once,
    by the dataset itself); an error when there is no manifest or it lists no sample of the split."""
    manifest = dataset.folder / MANIFEST_NAME
    if dataset.recorded is None:
        raise ShardError(f"manifest {manifest} does not exist: is this a shard set written by `mgm shard`?")
    if not dataset.recorded:
        raise ShardError(f"{manifest} lists no sample of split {dataset.split!r}")
    return dict(dataset.recorded)


def _column(table: Any, name: str, split: str) -> list[Any]:
    splits = table.column("split").to_pylist()
    return [value for value, row_split in zip(table.column(name).to_pylist(), splits) if row_split == split]


def read_weak_pool(folder: str | Path, split: str) -> WeakPool:
    """The weak samples of ``split`` in ``folder`` (shard, key, byte range), in manifest order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ShardError(
            f"weak shard folder {folder} does not exist ({RATIO_PARAM} > 0 needs it: run `mgm synthesize` "
            "for a synthetic set, or `mgm shard` with data.label_fraction < 1 for the real weak split)"
        )
    try:
        present = {path.name for path in list_shards(folder, split)}
    except ShardError as err:
        hint = " (the real weak split exists only with data.label_fraction < 1)" if split == "weak" else ""
        raise ShardError(f"{RATIO_PARAM} > 0 needs weak samples: {err}{hint}") from err
    table = read_manifest(folder)
    shards = _column(table, "shard", split)
    missing = sorted(set(shards) - present)
    if missing:
        raise ShardError(f"{folder / 'manifest.parquet'} lists shard {missing[0]}, which is not in {folder}")
    return WeakPool(
        folder=folder,
        split=split,
        shards=tuple(shards),
        keys=tuple(_column(table, "key", split)),
        offsets=tuple(int(v) for v in _column(table, "offset", split)),
        sizes=tuple(int(v) for v in _column(table, "size", split)),
    )


def read_record(stream: IO[bytes], offset: int, size: int) -> dict[str, Any]:
    """The WebDataset record (``__key__`` and raw bytes per field) stored at ``offset`` in a tar."""
    stream.seek(offset)
    data = stream.read(size)
    if len(data) != size:
        raise DecodeError(f"byte range {offset}+{size} runs past the end of the shard")
    record: dict[str, Any] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            if not member.isfile():
                continue
            key, _, field = member.name.partition(".")
            if record.setdefault("__key__", key) != key:
                raise DecodeError(
                    f"byte range {offset}+{size} holds samples {record['__key__']!r} and {key!r}"
                )
            handle = tar.extractfile(member)
            record[field] = handle.read() if handle else b""
    return record


def weak_item(
    fields: dict[str, Any], key: str, rgb_range: RgbRange, maps: Sequence[str] = ()
) -> dict[str, Any]:
    """A weak sample: its image and scene, ignore-valued dense targets (with zero, invalid ones for
    the map tasks ``maps`` the labelled samples carry), ``labelled`` False."""
    item = to_tensors({"rgb": fields["rgb"], "scene": fields["scene"]}, rgb_range)
    height, width = item["rgb"].shape[1:]
    item["seg"] = torch.full((height, width), IGNORE_LABEL, dtype=torch.long)
    item["depth"] = torch.zeros(1, height, width)
    item["depth_valid"] = torch.zeros(1, height, width, dtype=torch.bool)
    item["normal"] = torch.zeros(3, height, width)
    for name in maps:
        item[name] = torch.zeros(MAP_TASKS[name].channels, height, width)
        item[f"{name}_valid"] = torch.zeros(1, height, width, dtype=torch.bool)
    item["key"] = key
    item["meta"] = fields["meta"]
    item["labelled"] = torch.tensor(False)
    return item


class MixedShardDataset(IterableDataset):
    """The ``train`` split of ``labelled_folder`` with ``ratio`` weak samples of ``weak_split`` in
    ``weak_folder`` per labelled sample, interleaved per reader (see the module docstring).

    ``shuffle``, ``seed``, ``rgb_range``, ``rank`` and ``world_size`` mean what they mean for
    :class:`~pipeline.data.reader.ShardDataset`, which supplies the labelled stream.
    """

    def __init__(
        self,
        labelled_folder: str | Path,
        weak_folder: str | Path | None,
        weak_split: str,
        ratio: float,
        *,
        shuffle: bool = True,
        shuffle_buffer: int = 256,
        seed: int = 0,
        rgb_range: RgbRange = "01",
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        self.ratio = check_ratio(ratio)
        self.labelled = ShardDataset(
            labelled_folder, "train", shuffle=shuffle, shuffle_buffer=shuffle_buffer, seed=seed,
            rgb_range=rgb_range, rank=rank, world_size=world_size,
        )  # fmt: skip
        self.shard_sizes = samples_per_shard(self.labelled)
        unlisted = [path.name for path in self.labelled.shards if path.name not in self.shard_sizes]
        if unlisted:
            raise ShardError(
                f"{self.labelled.folder / 'manifest.parquet'} does not list shard {unlisted[0]} "
                "(shards and manifest are from different runs: rerun `mgm shard`)"
            )
        self.labelled_count = sum(self.shard_sizes[path.name] for path in self.labelled.shards)
        self.maps = map_tasks_of(read_summary(labelled_folder).get("tasks", []))
        self.weak_count = weak_count(self.ratio, self.labelled_count)
        self.seed = seed
        self.rgb_range: RgbRange = rgb_range
        self.epoch = 0
        self.pool: WeakPool | None = None
        if self.weak_count:
            if weak_folder is None:
                raise ParamsError(f"{RATIO_PARAM}: {self.ratio} > 0 needs a weak shard folder")
            self.pool = read_weak_pool(weak_folder, weak_split)
            self._check_pool()

    def _check_pool(self) -> None:
        assert self.pool is not None
        if len(self.pool) < self.weak_count:
            raise ParamsError(
                f"{RATIO_PARAM}: {self.ratio} needs {self.weak_count} weak samples per epoch "
                f"({self.ratio} x {self.labelled_count} labelled), but split {self.pool.split!r} of "
                f"{self.pool.folder} holds only {len(self.pool)}: lower {RATIO_PARAM} or make a larger "
                "weak set (synthesize.count / synthesize.count_relative)"
            )
        labelled, weak = read_summary(self.labelled.folder), read_summary(self.pool.folder)
        for name in ("resolution", "scene_names"):
            if labelled.get(name) != weak.get(name):
                raise ShardError(
                    f"weak set {self.pool.folder} has {name} {weak.get(name)}, the labelled set "
                    f"{self.labelled.folder} has {labelled.get(name)}"
                )

    def samples_per_epoch(self) -> int:
        """Labelled plus weak samples one epoch yields over all ranks."""
        return self.labelled_count + self.weak_count

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose labelled order and weak draw to use."""
        self.epoch = epoch
        self.labelled.set_epoch(epoch)

    def reader_counts(self, world_size: int, num_workers: int) -> list[int]:
        """Labelled samples of every reader this epoch, in reader order (rank-major, then worker)."""
        counts = []
        for rank in range(world_size):
            for worker in range(num_workers):
                view = copy.copy(self.labelled)
                position = (rank, world_size, worker, num_workers)
                view.reader_position = lambda position=position: position  # type: ignore[method-assign]
                counts.append(sum(self.shard_sizes[path.name] for path in view.shards_for_this_reader()))
        return counts

    def weak_draw(self) -> np.ndarray:
        """Indices into the weak pool drawn this epoch (all distinct), in the order they are cut."""
        if self.pool is None:
            return np.zeros(0, dtype=np.int64)
        rng = np.random.default_rng([self.seed, self.epoch, _WEAK_SEED_TAG])
        return rng.permutation(len(self.pool))[: self.weak_count]

    def weak_for_reader(self, reader: int, world_size: int, num_workers: int) -> tuple[int, np.ndarray]:
        """(labelled count, weak pool indices) of reader ``reader`` this epoch."""
        counts = self.reader_counts(world_size, num_workers)
        shares = apportion(self.ratio, counts)
        start = sum(shares[:reader])
        return counts[reader], self.weak_draw()[start : start + shares[reader]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, world, worker, workers = self.labelled.reader_position()
        labelled_count, weak = self.weak_for_reader(rank * workers + worker, world, workers)
        labelled_items = iter(self.labelled)
        streams: dict[str, IO[bytes]] = {}
        try:
            weak_items = (self._read_weak(int(index), streams) for index in weak)
            for is_weak in weak_slots(labelled_count, len(weak)):
                if is_weak:
                    yield next(weak_items)
                    continue
                item = next(labelled_items, None)
                if item is None:
                    raise ShardError(self._count_mismatch(labelled_count))
                item["labelled"] = torch.tensor(True)
                yield item
            if next(labelled_items, None) is not None:
                raise ShardError(self._count_mismatch(labelled_count))
        finally:
            for stream in streams.values():
                stream.close()

    def _count_mismatch(self, expected: int) -> str:
        return (
            f"the train shards of {self.labelled.folder} hold a different number of samples than its "
            f"manifest.parquet lists ({expected} for this reader): rerun `mgm shard`"
        )

    def _read_weak(self, index: int, streams: dict[str, IO[bytes]]) -> dict[str, Any]:
        pool = self.pool
        assert pool is not None
        shard, key = pool.shards[index], pool.keys[index]
        path = pool.folder / shard
        try:
            if shard not in streams:
                streams[shard] = open(path, "rb")  # noqa: SIM115 (closed by __iter__)
            record = read_record(streams[shard], pool.offsets[index], pool.sizes[index])
            if record.get("__key__") != key:
                raise DecodeError(f"the manifest's byte range holds {record.get('__key__')!r}")
            fields = decode_fields({name: record[name] for name in _WEAK_FIELDS if name in record})
        except (DecodeError, tarfile.TarError, OSError) as err:
            raise ShardError(f"shard {path}: sample {key!r}: {err}") from err
        return weak_item(fields, key, self.rgb_range, self.maps)


def weak_set(params: Params) -> tuple[Path, str]:
    """(folder, split) of the weak set ``mix.weak`` names: the synthetic set or the real weak split."""
    mix = params.mix
    if mix.weak == "synthetic":
        return Path(mix.synthetic), "synthetic"
    return Path(params.shard.out), "weak"
