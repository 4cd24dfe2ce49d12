"""Shard decoding throughput: the ShardDataset loader (0, 1 and 2 workers, batches of 32) against
plain PIL/numpy decoding of the same bytes already in memory (also batched), in one run.

    python -m bench.bench_decode --count 1000 --resolution 64

The loader also reads the tar files, checks every field and builds the depth mask; the plain
path starts from bytes in memory. The paths run in interleaved rounds (``--rounds``) and each
reports its median, so a slow spell of a shared machine does not land on one path only. The
headline ``ratio`` is the 0-worker loader over plain.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader

from bench._common import report, rooms_shard_params, timed
from pipeline.data.reader import ShardDataset, collate
from pipeline.data.sharding import shard_dataset

BATCH = 32


def plain_decode(records: list[dict[str, bytes]]) -> int:
    """Decode every field with PIL/numpy, make tensors and stack batches: the floor any loader pays."""
    for start in range(0, len(records), BATCH):
        items = []
        for record in records[start : start + BATCH]:
            rgb = torch.from_numpy(np.asarray(Image.open(io.BytesIO(record["rgb.png"])))).permute(2, 0, 1)
            seg = torch.from_numpy(np.asarray(Image.open(io.BytesIO(record["seg.png"])))).long()
            depth = torch.from_numpy(np.load(io.BytesIO(record["depth.npy"])).astype(np.float32))
            normal = torch.from_numpy(np.load(io.BytesIO(record["normal.npy"])).astype(np.float32))
            items.append(
                (rgb.float().div(255), seg, depth, normal.permute(2, 0, 1), int(record["scene.cls"]))
            )
        torch.stack([item[0] for item in items]), torch.stack([item[1] for item in items])
        torch.stack([item[2] for item in items]), torch.stack([item[3] for item in items])
    return len(records)


def read_records(folder: Path) -> list[dict[str, bytes]]:
    records: dict[str, dict[str, bytes]] = {}
    for shard in sorted(folder.glob("train-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                key, field = member.name.split(".", 1)
                records.setdefault(key, {})[field] = tar.extractfile(member).read()
    return list(records.values())


def loader_count(folder: Path, workers: int) -> int:
    loader = DataLoader(
        ShardDataset(folder, "train"), batch_size=BATCH, num_workers=workers, collate_fn=collate
    )
    return sum(len(batch["key"]) for batch in loader)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seconds: dict[str, list[float]] = {"plain": [], **{f"loader_{w}": [] for w in args.workers}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "real"
        params = rooms_shard_params(folder, args.resolution, args.count, "shard.samples_per_shard=128")
        shard_dataset(params, progress=False)
        records = read_records(folder)
        plain_decode(records[:20])
        loader_count(folder, 0)
        for _ in range(args.rounds):
            elapsed, n = timed(lambda: plain_decode(records))
            assert n == args.count
            seconds["plain"].append(elapsed)
            for workers in args.workers:
                elapsed, n = timed(lambda workers=workers: loader_count(folder, workers))
                assert n == args.count, f"{workers} worker(s) read {n} of {args.count} samples"
                seconds[f"loader_{workers}"].append(elapsed)
    rates = {name: args.count / statistics.median(values) for name, values in seconds.items()}
    results: dict[str, object] = {"resolution": args.resolution, "samples": args.count, "rounds": args.rounds}
    results["plain_pil_numpy_samples_per_s"] = round(rates["plain"], 1)
    for workers in args.workers:
        results[f"loader_{workers}_workers_samples_per_s"] = round(rates[f"loader_{workers}"], 1)
        results[f"ratio_{workers}_workers_over_plain"] = round(rates[f"loader_{workers}"] / rates["plain"], 3)
    if 0 in args.workers:
        results["ratio"] = results["ratio_0_workers_over_plain"]
    results["seconds_per_round"] = {name: [round(v, 4) for v in values] for name, values in seconds.items()}
    report("shard decoding", results, args.out)


if __name__ == "__main__":
    main()
