"""What one ``train_gan`` G step (with its D steps) costs under the old and the new default, and
what each of the CPU default's choices costs on its own.

Each setting is the current params.yaml plus its overrides, trained on real shards with
``train_gan``'s own step for ``--warmup`` untimed and ``--steps`` timed steps (median). Besides
seconds per G step it reports milliseconds per image shown to D (what a GAN's budget counts, in
kimg), so settings with other batch sizes or D steps compare.

    python bench/bench_gan_step.py --shards data/shards/real
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import gan_on_shards, report
from pipeline.train.gan.loop import train_step

OLD_DEFAULT = [
    "gan.g_width=32", "gan.d_width=32", "gan.attention_resolution=32", "gan.g_spectral_norm=true",
    "gan.conditioning=class_bn", "gan.d_steps=2", "gan.batch_size=16",
    "gan.diffaugment=[color, translation, cutout]", "gan.instance_noise=0.01",
]  # fmt: skip
SETTINGS: dict[str, list[str]] = {
    "old default (G and D 32 wide, SN in G, attention 32, 2 D steps, batch 16)": OLD_DEFAULT,
    "new default": [],
    "new default + spectral norm in G": ["gan.g_spectral_norm=true"],
    "new default, attention at 32 px": ["gan.attention_resolution=32"],
    "new default, no attention": ["gan.attention_resolution=0"],
    "new default + 2 D steps": ["gan.d_steps=2"],
    "new default, batch 16": ["gan.batch_size=16"],
    "new default, G 32 wide": ["gan.g_width=32"],
    "new default, D 32 wide": ["gan.d_width=32"],
    "new default, class_bn conditioning": ["gan.conditioning=class_bn"],
    "new default + colour DiffAugment": ["gan.diffaugment=[color, translation, cutout]"],
}


def time_setting(shards: str, overrides: Sequence[str], warmup: int, steps: int) -> dict[str, float]:
    params, models, batches = gan_on_shards(shards, list(overrides))
    gan = params.gan
    seconds = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        train_step(models, batches, gan, step, torch.device("cpu"))
        seconds.append(time.perf_counter() - start)
    median = statistics.median(seconds[warmup:])
    images = gan.batch_size * gan.d_steps
    return {"seconds_per_g_step": round(median, 4), "ms_per_image_shown": round(1000 * median / images, 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", default="data/shards/real")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    results = {name: time_setting(args.shards, ov, args.warmup, args.steps) for name, ov in SETTINGS.items()}
    old, new = results[next(iter(SETTINGS))], results["new default"]
    headline = {
        "old_seconds_per_g_step": old["seconds_per_g_step"],
        "new_seconds_per_g_step": new["seconds_per_g_step"],
        "old_ms_per_image": old["ms_per_image_shown"],
        "new_ms_per_image": new["ms_per_image_shown"],
        "image_cost_ratio_new_over_old": round(new["ms_per_image_shown"] / old["ms_per_image_shown"], 3),
    }
    headline["ratio"] = headline["image_cost_ratio_new_over_old"]
    report("gan_step", {**headline, "settings": results}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
