"""Synthesis throughput: images/s written to shards by the ``synthesize`` stage against G's forward
pass alone, with the same checkpoint, latents, labels and batch size, in one run.

    python -m bench.bench_synthesis --count 512 --resolution 64 --width 32 --batch 64

``forward``: the EMA generator on the latents (eval mode, no grad), nothing else. ``synthesize``:
the whole stage (load and check the checkpoint, generate, quantise, encode PNG, write tars, the
manifest, summary and provenance). The checkpoint comes from one training step on a small real
shard set built in a temporary folder, so G has the default architecture.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from bench._common import report, timed
from pipeline.config import load_params
from pipeline.data.sharding import shard_dataset
from pipeline.generators import allocate_labels, fixed_latents, load_generator, sagan_config
from pipeline.synthesis import synthesize
from pipeline.train.gan.loop import train_gan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=512)
    parser.add_argument("--resolution", type=int, default=64)
    parser.add_argument("--width", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        overrides = [
            f"data.resolution={args.resolution}",
            "data.rooms.train=16",
            "data.rooms.val=4",
            "data.rooms.test=4",
            "shard.workers=0",
            f"shard.out={root / 'real'}",
            f"gan.g_width={args.width}",
            f"gan.d_width={args.width}",
            "gan.steps=1",
            "gan.fid_extractor=tiny",
            "gan.eval_images=4",
            f"gan.out={root / 'gan'}",
            f"gan.plots={root / 'plots'}",
            f"runtime.device={args.device}",
            f"synthesize.checkpoint={root / 'gan' / 'last.pt'}",
            f"synthesize.out={root / 'synthetic'}",
            f"synthesize.count={args.count}",
            f"synthesize.batch_size={args.batch}",
            "synthesize.fid_split=none",
            f"runtime.device={args.device}",
        ]
        params = load_params(None, overrides)
        shard_dataset(params, progress=False)
        train_gan(params, progress=False)
        device = torch.device(args.device)
        config = sagan_config(params, 6, args.resolution)
        generator, _ = load_generator(params.synthesize.checkpoint, config, device)
        latents = fixed_latents(args.count, config.latent_dim, 0)
        labels = torch.from_numpy(allocate_labels([1.0] * 6, args.count, 0))

        def forward() -> None:
            with torch.no_grad():
                for start in range(0, args.count, args.batch):
                    generator(
                        latents[start : start + args.batch].to(device),
                        labels[start : start + args.batch].to(device),
                    )
            if device.type == "cuda":
                torch.cuda.synchronize()

        forward()  # warm-up (allocator, kernels)
        forward_s, _ = timed(forward)
        synth_s, provenance = timed(lambda: synthesize(params, progress=False))
        megabytes = sum(p.stat().st_size for p in (root / "synthetic" / "gan").glob("*.tar")) / 1e6
    forward_rate = args.count / forward_s
    synth_rate = provenance["count"] / synth_s
    report(
        "synthesis to shards vs G forward",
        {
            "resolution": args.resolution,
            "g_width": args.width,
            "batch": args.batch,
            "device": args.device,
            "images": args.count,
            "forward_images_per_s": round(forward_rate, 1),
            "synthesize_images_per_s": round(synth_rate, 1),
            "MB_written": round(megabytes, 2),
            "ratio_synthesize_over_forward": round(synth_rate / forward_rate, 3),
            "ratio": round(synth_rate / forward_rate, 3),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
