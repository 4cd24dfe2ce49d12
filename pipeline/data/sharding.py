"""The ``shard`` stage: turn a source into reproducible WebDataset shards, a manifest and a summary.

Output folder (``shard.out``)::

    train-000000.tar ...   labelled training images (``data.label_fraction`` of the training set)
    weak-000000.tar ...    the rest of the training set (scene labels used; pixel labels for evaluation)
    val-000000.tar ...     validation
    test-000000.tar ...    test
    manifest.parquet       one row per sample: shard, key, split, source, id, scene, byte range
    summary.json           counts per split and scene, pixel frequency per class, names, params

Same params give byte-identical tars and manifest: encoding is deterministic, tar headers
carry ``mtime=0`` and fixed owners, and the sample order depends on the seed only.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import webdataset as wds

from pipeline import __version__
from pipeline.atomic import atomic_output_dir, write_json_atomic
from pipeline.config import Params, params_to_dict
from pipeline.data.codec import encode_sample
from pipeline.data.dense_maps import BASE_TASKS
from pipeline.data.manifest import MANIFEST_NAME, ManifestRow, sample_byte_ranges, write_manifest
from pipeline.data.schema import IGNORE_LABEL, Sample, validate_sample
from pipeline.data.source import Source
from pipeline.data.sources import make_source
from pipeline.errors import SampleError
from pipeline.lifecycle import worker_stops_with_parent
from pipeline.progress import progress_bar

SHARD_SPLITS = ("train", "weak", "val", "test", "reference")
SUMMARY_NAME = "summary.json"
WRITER_ID = "mgm-pipeline shard"


def split_labelled(ids: Sequence[str], label_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Split training ids into (labelled, weak) by a seeded permutation; each keeps the source order."""
    count = len(ids)
    labelled_count = min(count, max(1, round(label_fraction * count))) if count else 0
    order = np.random.default_rng([seed, 0x5EED]).permutation(count)
    chosen = np.zeros(count, dtype=bool)
    chosen[order[:labelled_count]] = True
    return [i for i, c in zip(ids, chosen) if c], [i for i, c in zip(ids, chosen) if not c]


def shard_bounds(count: int, samples_per_shard: int, min_shards: int) -> list[tuple[int, int]]:
    """Contiguous (start, end) ranges of near-equal size: at least ``min_shards`` when samples allow."""
    if count == 0:
        return []
    shards = min(count, max(min_shards, math.ceil(count / samples_per_shard)))
    edges = [round(i * count / shards) for i in range(shards + 1)]
    return list(zip(edges[:-1], edges[1:]))


def plan_splits(source: Source, label_fraction: float, seed: int) -> dict[str, list[str]]:
    """Item ids per shard split: ``train`` and ``weak`` carved from the source's training ids."""
    ids = {name: list(values) for name, values in source.split_ids().items()}
    labelled, weak = split_labelled(ids.get("train", []), label_fraction, seed)
    plan = {
        "train": labelled,
        "weak": weak,
        **{split: ids.get(split, []) for split in ("val", "test", "reference")},
    }
    seen: dict[str, str] = {}
    for split, values in plan.items():
        for item in values:
            if item in seen:
                raise SampleError(
                    f"item {item!r} of source {source.name!r} is in both {seen[item]} and {split}"
                )
            seen[item] = split
    return plan


@contextmanager
def sample_loader(source: Source, workers: int) -> Iterator[Callable[[Sequence[str]], Iterable[Sample]]]:
    """A function mapping ids to samples in order, on ``workers`` processes (0 = in-process)."""
    if workers == 0:
        yield lambda ids: map(source.load, ids)
        return
    with multiprocessing.get_context("fork").Pool(workers, initializer=worker_stops_with_parent) as pool:
        yield lambda ids: pool.imap(source.load, ids, chunksize=4)


class _SplitStats:
    """Counts per scene and, for labelled splits, pixels per class."""

    def __init__(self, scene_names: Sequence[str], num_classes: int) -> None:
        self.scene_counts = np.zeros(len(scene_names), dtype=np.int64)
        self.pixel_counts = np.zeros(num_classes + 1, dtype=np.int64)  # last bin = ignore
        self.num_classes = num_classes

    def add(self, sample: Sample) -> None:
        self.scene_counts[sample.scene] += 1
        if sample.seg is not None:
            labels = np.where(sample.seg == IGNORE_LABEL, self.num_classes, sample.seg)
            self.pixel_counts += np.bincount(labels.ravel(), minlength=self.num_classes + 1)


def write_split(
    split: str,
    samples: Iterable[Sample],
    count: int,
    folder: Path,
    bounds: Sequence[tuple[int, int]],
    check: Callable[[Sample], Sample],
    stats: _SplitStats,
    progress: bool = True,
) -> list[ManifestRow]:
    """Write one split's samples into ``<split>-NNNNNN.tar`` files; return its manifest rows."""
    rows: list[ManifestRow] = []
    iterator = iter(
        progress_bar(samples, total=count, desc=f"shard {split}", unit="img", disable=not progress)
    )
    for shard_index, (start, end) in enumerate(bounds):
        name = f"{split}-{shard_index:06d}.tar"
        written: list[Sample] = []
        with open(folder / name, "wb") as stream:
            writer = wds.TarWriter(stream, mtime=0, encoder=False)
            try:
                for _ in range(end - start):
                    sample = check(next(iterator))
                    writer.write(encode_sample(sample, split))
                    stats.add(sample)
                    written.append(sample)
            finally:  # closed while its stream is open: else its finaliser writes to a closed file
                writer.close()
        ranges = sample_byte_ranges(folder / name)
        for sample in written:
            offset, size = ranges[sample.key]
            rows.append(_manifest_row(name, split, sample, offset, size))
    return rows


def _manifest_row(shard: str, split: str, sample: Sample, offset: int, size: int) -> ManifestRow:
    return ManifestRow(
        shard=shard,
        key=sample.key,
        split=split,
        source=str(sample.meta.get("source", "")),
        id=str(sample.meta.get("id", sample.key)),
        scene=int(sample.scene),
        scene_name=str(sample.meta.get("scene_name", "")),
        offset=offset,
        size=size,
    )


def shard_dataset(
    params: Params, *, source: Source | None = None, force: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Run the ``shard`` stage: write ``params.shard.out`` atomically and return its summary.

    ``source`` defaults to the one ``params.data`` names; pass your own :class:`Source` to shard
    any dataset that implements the interface.
    """
    data, shard = params.data, params.shard
    source = source if source is not None else make_source(data, params.model.tasks)
    plan = plan_splits(source, data.label_fraction, data.seed)
    num_classes, num_scenes = len(source.class_names), len(source.scene_names)

    def check(sample: Sample) -> Sample:
        if set(sample.maps) != set(source.maps):
            raise SampleError(
                f"sample {sample.key!r}: carries maps {sorted(sample.maps)}, but model.tasks asks the "
                f"source for {sorted(source.maps)}"
            )
        return validate_sample(
            sample, num_classes=num_classes, num_scenes=num_scenes, resolution=data.resolution
        )

    rows: list[ManifestRow] = []
    stats = {split: _SplitStats(source.scene_names, num_classes) for split in SHARD_SPLITS}
    shard_counts: dict[str, int] = {}
    with (
        atomic_output_dir(shard.out, SUMMARY_NAME, writer=WRITER_ID, force=force) as folder,
        sample_loader(source, shard.workers) as load,
    ):
        for split in SHARD_SPLITS:
            ids = plan[split]
            bounds = shard_bounds(len(ids), shard.samples_per_shard, shard.min_shards)
            shard_counts[split] = len(bounds)
            rows += write_split(split, load(ids), len(ids), folder, bounds, check, stats[split], progress)
        write_manifest(rows, folder / MANIFEST_NAME)
        summary = build_summary(source, params, stats, shard_counts)
        write_json_atomic(folder / SUMMARY_NAME, summary)
    return summary


def build_summary(
    source: Source, params: Params, stats: dict[str, _SplitStats], shard_counts: dict[str, int]
) -> dict[str, Any]:
    """The JSON summary: names, counts per split and scene, pixel frequency per class, params."""
    train_pixels = stats["train"].pixel_counts
    total = max(int(train_pixels.sum()), 1)
    return {
        "writer": WRITER_ID,
        "version": __version__,
        "source": source.name,
        "resolution": params.data.resolution,
        "class_names": list(source.class_names),
        "scene_names": list(source.scene_names),
        "tasks": [*BASE_TASKS, *source.maps],
        "splits": {
            split: {
                "samples": int(split_stats.scene_counts.sum()),
                "shards": shard_counts[split],
                "scenes": {
                    name: int(n) for name, n in zip(source.scene_names, split_stats.scene_counts) if n
                },
            }
            for split, split_stats in stats.items()
        },
        "pixel_frequency": {
            name: round(int(n) / total, 6) for name, n in zip(source.class_names, train_pixels[:-1])
        },
        "ignore_fraction": round(int(train_pixels[-1]) / total, 6),
        "params": {"data": params_to_dict(params)["data"]},
    }


def summary_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The numeric part of a summary, shaped for ``dvc metrics show``."""
    return {
        "samples": {split: info["samples"] for split, info in summary["splits"].items()},
        "scenes": {split: info["scenes"] for split, info in summary["splits"].items()},
        "pixel_frequency": summary["pixel_frequency"],
        "ignore_fraction": summary["ignore_fraction"],
    }
