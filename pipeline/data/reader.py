"""Read a shard set as a PyTorch ``IterableDataset`` that decodes samples to tensors.

Shards are divided first across ranks (``torchrun``/DDP) and then across DataLoader workers,
so every sample is read exactly once per epoch. The shard order and the in-worker shuffle
buffer are seeded by ``(seed, epoch)``, so an epoch is reproducible; call :meth:`set_epoch`
between epochs for a new order.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch.utils.data import IterableDataset, get_worker_info

from pipeline.data.codec import DecodeError, decode_fields
from pipeline.data.dense_maps import BASE_TASKS, MAP_TASKS
from pipeline.data.manifest import MANIFEST_NAME, read_manifest
from pipeline.data.tar_members import iter_samples
from pipeline.errors import ShardError

RgbRange = Literal["01", "pm1"]


def recorded_counts(folder: str | Path, split: str) -> dict[str, int] | None:
    """Samples per shard of ``split`` as the shard set's manifest records them (``None``: no manifest).

    Why: a tar cut cleanly at a sample boundary reads without error; only the record says that
    samples are missing.
    """
    if not (Path(folder) / MANIFEST_NAME).is_file():
        return None
    table = read_manifest(folder).select(["shard", "split"]).to_pydict()
    counts: dict[str, int] = {}
    for shard, row_split in zip(table["shard"], table["split"]):
        if row_split == split:
            counts[shard] = counts.get(shard, 0) + 1
    return counts


def list_shards(folder: str | Path, split: str) -> list[Path]:
    """The ``<split>-NNNNNN.tar`` files of ``folder`` in order; error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ShardError(f"shard folder {folder} does not exist (run the shard stage: `mgm shard`)")
    shards = sorted(folder.glob(f"{split}-[0-9][0-9][0-9][0-9][0-9][0-9].tar"))
    if not shards:
        raise ShardError(f"no shards for split {split!r} in {folder} (expected {split}-000000.tar ...)")
    empty = [path for path in shards if path.stat().st_size == 0]
    if empty:
        raise ShardError(f"shard {empty[0]} is empty")
    return shards


def read_summary(folder: str | Path) -> dict[str, Any]:
    """The ``summary.json`` of a shard set (names of classes and scenes, counts)."""
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise ShardError(f"{path} does not exist: is {folder} a shard set written by `mgm shard`?")
    return json.loads(path.read_text())


def require_tasks(summary: dict[str, Any], folder: str | Path, tasks: Sequence[str]) -> None:
    """Refuse ``tasks`` (``model.tasks``) the shard set does not carry, saying how to make them.
    A summary without ``tasks`` is from before map tasks: it carries the base three."""
    stored = summary.get("tasks", list(BASE_TASKS))
    missing = [task for task in tasks if task not in stored]
    if missing:
        raise ShardError(
            f"model.tasks: {', '.join(missing)} not in the shards of {folder} (they carry "
            f"{', '.join(stored)}): re-shard with these tasks in model.tasks (`dvc repro shard`, or "
            f"`mgm shard --set model.tasks=[...]`)"
        )


def shard_resolution(summary: dict[str, Any], folder: str | Path) -> int:
    """The image side of a shard set, from its summary: every stage after ``shard`` reads it here,
    never from ``data.resolution`` (which may have changed since the shards were written)."""
    if not isinstance(summary.get("resolution"), int):
        raise ShardError(
            f"{Path(folder) / 'summary.json'} records no resolution: re-shard it with `mgm shard`"
        )
    return int(summary["resolution"])


def epoch_batches(dataset: Any, batch_size: int, world_size: int = 1) -> int | None:
    """Full batches one rank draws per epoch (``None`` when the dataset cannot say): a progress
    bar's total. Exact for one reader; with several loader workers each drops its own remainder."""
    samples = dataset.samples_per_epoch() if hasattr(dataset, "samples_per_epoch") else None
    return None if samples is None else samples // max(world_size, 1) // batch_size


def distributed_rank_and_world() -> tuple[int, int]:
    """(rank, world size) from an initialised process group, else torchrun's env, else (0, 1)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def to_tensors(fields: dict[str, Any], rgb_range: RgbRange = "01") -> dict[str, Any]:
    """Convert decoded numpy fields to tensors (CHW floats, long labels, a depth validity mask)."""
    rgb = torch.from_numpy(fields["rgb"]).permute(2, 0, 1).float().div_(255.0)
    if rgb_range == "pm1":
        rgb = rgb.mul_(2.0).sub_(1.0)
    out: dict[str, Any] = {"rgb": rgb, "scene": torch.tensor(fields["scene"], dtype=torch.long)}
    if "seg" in fields:
        out["seg"] = torch.from_numpy(fields["seg"]).long()
    if "depth" in fields:
        depth = torch.from_numpy(fields["depth"]).unsqueeze(0)
        out["depth"] = depth
        out["depth_valid"] = depth > 0
    if "normal" in fields:
        out["normal"] = torch.from_numpy(fields["normal"]).permute(2, 0, 1).contiguous()
    for name in MAP_TASKS:
        if name in fields:
            values = torch.from_numpy(fields[name])
            out[name] = values.unsqueeze(0) if values.ndim == 2 else values.permute(2, 0, 1).contiguous()
            out[f"{name}_valid"] = torch.ones(1, *out[name].shape[1:], dtype=torch.bool)
    return out


class ShardDataset(IterableDataset):
    """Iterate one split of a shard set as dicts of tensors.

    Each item holds ``rgb`` (float 3xHxW in [0, 1], or [-1, 1] with ``rgb_range="pm1"``),
    ``scene`` (long), and where stored ``seg`` (long HxW, 255 = ignore), ``depth`` (float
    1xHxW metres), ``depth_valid`` (bool 1xHxW), ``normal`` (float 3xHxW) and each map task
    (float CxHxW, with ``<task>_valid``, bool 1xHxW), plus ``key``
    and ``meta``. ``dense`` names the pixel labels to decode (``None``: all; ``()``: none, for the
    stages that read images and scene labels only).
    """

    def __init__(
        self,
        folder: str | Path,
        split: str,
        *,
        shuffle: bool = False,
        shuffle_buffer: int = 256,
        seed: int = 0,
        rgb_range: RgbRange = "01",
        rank: int | None = None,
        world_size: int | None = None,
        dense: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.dense = None if dense is None else tuple(dense)
        self.folder = Path(folder)
        self.split = split
        self.shards: Sequence[Path] = list_shards(folder, split)
        self.recorded = recorded_counts(folder, split)
        if self.recorded is not None:
            missing = sorted(set(self.recorded) - {path.name for path in self.shards})
            if missing:
                raise ShardError(
                    f"split {split!r} of {self.folder}: shard(s) {missing[:3]} are in the manifest but not "
                    "in the folder; restore them (`dvc checkout`) or re-shard"
                )
        self.shuffle = shuffle
        self.shuffle_buffer = shuffle_buffer
        self.seed = seed
        self.rgb_range: RgbRange = rgb_range
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shard order and shuffle to use."""
        self.epoch = epoch

    def reader_position(self) -> tuple[int, int, int, int]:
        """(rank, world size, worker id, number of workers) of the calling process."""
        default_rank, default_world = distributed_rank_and_world()
        rank = default_rank if self.rank is None else self.rank
        world = default_world if self.world_size is None else self.world_size
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker else (0, 1)
        return rank, world, worker_id, num_workers

    def samples_per_epoch(self) -> int | None:
        """Samples one epoch yields over all ranks, from the manifest (``None`` without one): the total
        of a progress bar, known before the first batch."""
        if self.recorded is None:
            return None
        return sum(self.recorded.get(path.name, 0) for path in self.shards)

    def check_readers(self, workers: int) -> None:
        """Refuse, in the main process and before any worker starts, more readers than shards (each
        reader needs a shard of its own); the error then arrives alone, not inside a worker's traceback."""
        _, world, _, _ = self.reader_position()
        readers = world * max(workers, 1)
        if len(self.shards) < readers:
            raise ShardError(
                f"split {self.split!r} of {self.folder} has {len(self.shards)} shard(s), fewer than the "
                f"{readers} readers ({world} rank(s) x {max(workers, 1)} loader worker(s)): lower "
                "runtime.workers or re-shard with a larger shard.min_shards"
            )

    def shards_for_this_reader(self) -> list[Path]:
        """The shards this rank and DataLoader worker reads this epoch."""
        rank, world, worker_id, num_workers = self.reader_position()
        readers = world * num_workers
        if len(self.shards) < readers:
            self.check_readers(num_workers)
        order = list(self.shards)
        if self.shuffle:
            random.Random(f"{self.seed}-{self.epoch}").shuffle(order)
        return order[rank * num_workers + worker_id :: readers]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rank, _, worker_id, _ = self.reader_position()
        samples = self._decoded(self.shards_for_this_reader())
        if not self.shuffle:
            yield from samples
            return
        rng = random.Random(f"{self.seed}-{self.epoch}-{rank}-{worker_id}")
        yield from _buffer_shuffle(samples, self.shuffle_buffer, rng)

    def _decoded(self, shards: Sequence[Path]) -> Iterator[dict[str, Any]]:
        for shard in shards:
            count = 0
            try:
                for record in iter_samples(shard.read_bytes()):
                    yield self._decode(record, shard)
                    count += 1
            except (ShardError, KeyboardInterrupt):
                raise
            except Exception as err:
                raise ShardError(f"shard {shard} is corrupt or truncated: {err}") from err
            expected = None if self.recorded is None else self.recorded.get(shard.name)
            if expected is not None and count != expected:
                raise ShardError(
                    f"shard {shard} holds {count} samples but the manifest of {self.folder} records "
                    f"{expected}: it was truncated or replaced; re-shard (`mgm shard`) or `dvc checkout` it"
                )

    def _decode(self, record: dict[str, Any], shard: Path) -> dict[str, Any]:
        key = record.get("__key__", "?")
        try:
            fields = decode_fields(record, self.dense)
        except DecodeError as err:
            raise ShardError(f"shard {shard}: sample {key!r}: {err}") from err
        item = to_tensors(fields, self.rgb_range)
        item["key"] = key
        item["meta"] = fields["meta"]
        return item


def _buffer_shuffle(items: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """Shuffle a stream with a buffer of ``size`` items (deterministic for a given ``rng``)."""
    buffer: list[Any] = []
    for item in items:
        buffer.append(item)
        if len(buffer) >= size:
            index = rng.randrange(len(buffer))
            buffer[index], buffer[-1] = buffer[-1], buffer[index]
            yield buffer.pop()
    rng.shuffle(buffer)
    yield from buffer


def collate(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors of a batch; keep ``key`` and ``meta`` as lists."""
    batch: dict[str, Any] = {}
    for name in items[0]:
        values = [item[name] for item in items]
        batch[name] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return batch
