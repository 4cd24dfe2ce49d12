"""Throughput of the mixed real/weak loader against the real-only loader, in one run.

Shards ``--count`` embedded-rooms training images with ``data.label_fraction=0.5`` (half labelled
``train``, half ``weak``), then reads epochs of

* the real-only loader: ``ShardDataset(train, shuffle)`` as ``train_mt`` reads it, and
* the mixed loader: ``MixedShardDataset`` over the same ``train`` split plus ``--ratio`` weak samples
  per labelled one, read by byte range from the ``weak`` split (the real weak split stores pixel
  labels too, so its samples are larger than synthetic ones: the harder case),

both through a ``DataLoader`` with ``collate``, batches of 16, 0 or more workers. The two alternate
epoch by epoch so they see the same machine load; the rate of an epoch is its samples over its whole
time (workers are forked, so their start-up is a few milliseconds), and the median epoch is kept.

    python -m bench.bench_mixed_loader --count 640 --epochs 5 --workers 0 2 --ratio 1.0
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, IterableDataset

from bench._common import report, rooms_shard_params
from pipeline.data.mixing import MixedShardDataset
from pipeline.data.reader import ShardDataset, collate
from pipeline.data.sharding import shard_dataset

BATCH = 16


def epoch_rate(dataset: IterableDataset, workers: int) -> tuple[float, int]:
    """(samples per second over one whole epoch, samples in the epoch)."""
    start, samples = time.perf_counter(), 0
    for batch in DataLoader(dataset, batch_size=BATCH, num_workers=workers, collate_fn=collate):
        samples += len(batch["key"])
    return samples / (time.perf_counter() - start), samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=640, help="training images (half labelled, half weak)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per loader and worker setting")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--ratio", type=float, default=1.0, help="mix.synthetic_ratio of the mixed loader")
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "real"
        params = rooms_shard_params(
            folder, args.resolution, args.count, "data.label_fraction=0.5", "shard.samples_per_shard=64"
        )
        shard_dataset(params, progress=False)
        real = ShardDataset(folder, "train", shuffle=True, seed=0)
        mixed = MixedShardDataset(folder, folder, "weak", args.ratio, seed=0)
        rates: dict[str, list[float]] = {}
        samples: dict[str, int] = {}
        for epoch in range(args.epochs):
            real.set_epoch(epoch)
            mixed.set_epoch(epoch)
            for workers in args.workers:
                for name, dataset in (("real", real), ("mixed", mixed)):
                    label = f"{name}_{workers}_workers"
                    rate, samples[label] = epoch_rate(dataset, workers)
                    rates.setdefault(label, []).append(rate)
    medians = {label: statistics.median(values) for label, values in rates.items()}
    results = {
        "resolution": args.resolution,
        "labelled": mixed.labelled_count,
        "weak_per_epoch": mixed.weak_count,
        "synthetic_ratio": args.ratio,
        "batch_size": BATCH,
        "threads": args.threads,
        "samples_per_epoch": samples,
        "samples_per_s": {label: round(value, 1) for label, value in medians.items()},
        "epoch_rates": {label: [round(v, 1) for v in values] for label, values in rates.items()},
    }
    for workers in args.workers:
        results[f"ratio_mixed_over_real_{workers}_workers"] = round(
            medians[f"mixed_{workers}_workers"] / medians[f"real_{workers}_workers"], 3
        )
    first = f"ratio_mixed_over_real_{args.workers[0]}_workers"
    results["ratio"] = results[first]  # the headline: mixed / real-only at the first worker count
    report("mixed real/weak loader vs real-only loader", results, args.out)


if __name__ == "__main__":
    main()
