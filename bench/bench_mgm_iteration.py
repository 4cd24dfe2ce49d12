"""Time of one joint MGM iteration, split by step, with the default architecture (M: ResNet-18 encoder
and the small decoders; G/D: SAGAN widths 32, latent 128, attention at 32 px), batch 16, 64 px.

    flock /tmp/mgm-cpu.lock python -m bench.bench_mgm_iteration --iterations 10

Each step is timed on its own (``joint_iteration(..., timings=...)``; CUDA synchronised), medians over
``--iterations`` after ``--warmup`` untimed iterations; ``dense`` alone is what one ``train_mt``
step does, so ``iteration / dense`` is the cost of MGM over multi-task training in the same run.
The GAN checkpoint comes from one ``train_gan`` step on a small rooms shard set built in a
temporary folder; ``--set`` changes any param (e.g. ``--set mgm.ssl=recon``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from bench._common import report, rooms_shard_params, time_joint_iterations
from pipeline.config import load_params
from pipeline.data.reader import ShardDataset, collate, read_summary
from pipeline.data.sharding import shard_dataset
from pipeline.inference import to_device
from pipeline.train.gan.loop import train_gan
from pipeline.train.mgm_models import build_joint_models, build_optimizers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out")
    args = parser.parse_args()
    device = torch.device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shards = rooms_shard_params(
            root / "real", args.resolution, args.batch, "shard.workers=0", "data.rooms.val=2"
        )
        shard_dataset(shards, progress=False)
        overrides = [
            f"shard.out={root / 'real'}",
            f"data.resolution={args.resolution}",
            "gan.steps=1",
            "gan.fid_extractor=tiny",
            "gan.eval_images=2",
            f"gan.batch_size={args.batch}",
            f"gan.out={root / 'gan'}",
            f"gan.plots={root / 'plots'}",
            f"runtime.device={args.device}",
            f"mgm.gan_checkpoint={root / 'gan' / 'best.pt'}",
            f"mgm.batch_size={args.batch}",
            *args.overrides,
        ]
        params = load_params(None, overrides)
        train_gan(params, progress=False)
        summary = read_summary(root / "real")
        models = build_joint_models(
            params, len(summary["class_names"]), summary["scene_names"], args.resolution, device
        )
        optimizers = build_optimizers(params, models)
        batch = to_device(collate(list(ShardDataset(root / "real", "train"))[: args.batch]), device)
    per_step, totals = time_joint_iterations(
        models, optimizers, batch, params, args.resolution, args.warmup, args.iterations
    )
    medians = {step: statistics.median(values) * 1000 for step, values in per_step.items()}
    total = statistics.median(totals) * 1000
    report(
        "one joint MGM iteration, split by step",
        {
            "resolution": args.resolution,
            "batch": args.batch,
            "device": args.device,
            "encoder": params.model.encoder,
            "g_width": params.gan.g_width,
            "d_width": params.gan.d_width,
            "overrides": args.overrides,
            "iterations": args.iterations,
            "median_ms_per_step": {step: round(ms, 1) for step, ms in medians.items()},
            "share_of_iteration": {step: round(ms / total, 3) for step, ms in medians.items()},
            "median_ms_per_iteration": round(total, 1),
            "ratio_iteration_over_dense_step": round(total / medians["dense"], 2),
            "ratio": round(total / medians["dense"], 2),  # the headline: iteration / dense step
        },
        args.out,
    )


if __name__ == "__main__":
    main()
