"""Training throughput through the shard loader against the same model fed from in-memory tensors.

Both paths run the identical multi-task training step (the default ``model`` params: every task,
batch 16, Adam) on the same images at 64 px with 2 torch threads. The in-memory path trains on
batches decoded once beforehand; the loader path reads, decodes and collates the shards every
epoch (``ShardDataset`` + ``DataLoader``, 0 or more worker processes). Epochs alternate between
the paths and the median epoch rate is kept, so both see the same machine load.

    python -m bench.bench_train_loader --count 320 --epochs 3 --workers 0 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from bench._common import report
from pipeline.config import load_params
from pipeline.data.reader import ShardDataset, collate
from pipeline.data.sharding import shard_dataset
from pipeline.train.builders import autocast_factory, build_loss, build_model, build_optimizer
from pipeline.train.multitask import _Trainable


def make_step(params, num_classes: int):
    torch.manual_seed(0)
    net = build_model(params, params.model.tasks, num_classes)
    trainable = _Trainable(
        net, build_loss(params, params.model.tasks), autocast_factory(torch.device("cpu"), False)
    )
    optimizer = build_optimizer(params, list(trainable.parameters()))

    def step(batch) -> int:
        loss, _ = trainable(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(batch["rgb"])

    return step


def epoch_rate(step, batches) -> float:
    start, images = time.perf_counter(), 0
    for batch in batches:
        images += step(batch)
    return images / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=320, help="training images")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per path")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "real"
        params = load_params(
            "params.yaml",
            [
                f"shard.out={folder}",
                f"data.resolution={args.resolution}",
                f"data.rooms.train={args.count}",
                "data.rooms.val=2",
                "data.rooms.test=2",
                "shard.samples_per_shard=64",
            ],
        )
        shard_dataset(params, progress=False)
        batch_size = params.train_mt.batch_size
        dataset = ShardDataset(folder, "train", shuffle=True, seed=0)
        in_memory = list(DataLoader(dataset, batch_size=batch_size, collate_fn=collate, drop_last=True))
        step = make_step(params, 13)
        for batch in in_memory[:3]:  # warm-up
            step(batch)
        rates: dict[str, list[float]] = {"memory": []} | {f"loader_{w}": [] for w in args.workers}
        for epoch in range(args.epochs):
            rates["memory"].append(epoch_rate(step, in_memory))
            for workers in args.workers:
                dataset.set_epoch(epoch)
                loader = DataLoader(
                    dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate, drop_last=True
                )
                rates[f"loader_{workers}"].append(epoch_rate(step, loader))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    results = {
        "resolution": args.resolution,
        "images": len(in_memory) * batch_size,
        "batch_size": batch_size,
        "threads": args.threads,
        "model": params.model.model_dump(),
        "images_per_s": {name: round(value, 2) for name, value in medians.items()},
        "epoch_rates": {name: [round(v, 2) for v in values] for name, values in rates.items()},
    }
    for workers in args.workers:
        results[f"ratio_loader_{workers}_workers_over_memory"] = round(
            medians[f"loader_{workers}"] / medians["memory"], 3
        )
    if 0 in args.workers:
        results["ratio"] = results["ratio_loader_0_workers_over_memory"]
    report("training through the shard loader vs in-memory tensors", results, args.out)


if __name__ == "__main__":
    main()
