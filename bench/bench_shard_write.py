"""Shard writing throughput against the generator alone, in one run (in-process, one core).

    python -m bench.bench_shard_write --count 400 --resolution 64

``generator``: render the samples only. ``shard``: the whole ``shard`` stage on the same samples
(render, validate, encode PNG/npy, write tars, manifest, summary). The ratio shard/generator says
what share of the generator's speed survives writing.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench._common import report, rooms_shard_params, timed
from pipeline.data.rooms import RoomsSource
from pipeline.data.sharding import shard_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--out")
    args = parser.parse_args()
    source = RoomsSource(resolution=args.resolution, seed=0, train=args.count, val=1, test=1)
    ids = list(source.split_ids()["train"])
    source.load(ids[0])
    generate_s, _ = timed(lambda: [source.load(i) for i in ids])
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "real"
        params = rooms_shard_params(out, args.resolution, args.count, "shard.workers=0")
        shard_s, _ = timed(lambda: shard_dataset(params, source=source, progress=False))
        megabytes = sum(p.stat().st_size for p in out.glob("*.tar")) / 1e6
    total = args.count + 2
    generator_rate = args.count / generate_s
    shard_rate = total / shard_s
    report(
        "shard writing vs generator",
        {
            "resolution": args.resolution,
            "samples": total,
            "generator_samples_per_s": round(generator_rate, 1),
            "shard_samples_per_s": round(shard_rate, 1),
            "shard_MB_per_s": round(megabytes / shard_s, 2),
            "MB_written": round(megabytes, 2),
            "ratio_shard_over_generator": round(shard_rate / generator_rate, 3),
            "ratio": round(shard_rate / generator_rate, 3),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
