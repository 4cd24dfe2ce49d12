"""Shard decoding throughput: the ShardDataset loader (0 and 2 workers, batches of 32) against
plain PIL/numpy decoding of the same bytes already in memory (also batched), in one run.

    python -m bench.bench_decode --count 1000 --resolution 64

The loader also reads the tar files, checks every field and builds the depth mask; the plain
path starts from bytes in memory, so it is the floor any loader pays.
"""

from __future__ import annotations

import argparse
import io
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
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "real"
        params = rooms_shard_params(folder, args.resolution, args.count, "shard.samples_per_shard=128")
        shard_dataset(params, progress=False)
        records = read_records(folder)
        plain_decode(records[:20])
        plain_s, n = timed(lambda: plain_decode(records))
        loader0_s, n0 = timed(lambda: loader_count(folder, 0))
        loader2_s, n2 = timed(lambda: loader_count(folder, 2))
    assert n == n0 == n2 == args.count
    plain = n / plain_s
    report(
        "shard decoding",
        {
            "resolution": args.resolution,
            "samples": n,
            "plain_pil_numpy_samples_per_s": round(plain, 1),
            "loader_0_workers_samples_per_s": round(n0 / loader0_s, 1),
            "loader_2_workers_samples_per_s": round(n2 / loader2_s, 1),
            "ratio_0_workers_over_plain": round(n0 / loader0_s / plain, 3),
            "ratio_2_workers_over_plain": round(n2 / loader2_s / plain, 3),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
