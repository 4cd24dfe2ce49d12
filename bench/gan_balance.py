"""Who leads in the first steps of SAGAN training: D's hinge loss under different optimiser settings.

Trains G and D from scratch with ``train_gan``'s own step for ``--steps`` steps per setting (one D
step per G step, no DiffAugment, no instance noise, so only the optimiser differs) and prints the
mean D hinge loss and real/fake scores per block of ``--block`` steps. A loss stuck near 2 with both
scores near 0 means G cancels every D update; a loss falling towards 1 means D keeps ahead.

    python bench/gan_balance.py --shards data/shards/real
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import gan_on_shards, report
from pipeline.train.gan.loop import train_step

SETTINGS: dict[str, list[str]] = {
    "betas (0, 0.999), G 1e-4, D 4e-4": ["gan.betas=[0.0, 0.999]"],
    "betas (0, 0.999), G 1e-5, D 4e-4": ["gan.betas=[0.0, 0.999]", "gan.g_lr=0.00001"],
    "betas (0, 0.999), G 3e-5, D 4e-4": ["gan.betas=[0.0, 0.999]", "gan.g_lr=0.00003"],
    "betas (0, 0.999), G 1e-4, D 1.6e-3": ["gan.betas=[0.0, 0.999]", "gan.d_lr=0.0016"],
    "betas (0.5, 0.999), G 1e-4, D 4e-4": ["gan.betas=[0.5, 0.999]"],
    "betas (0.9, 0.999), G 1e-4, D 4e-4": ["gan.betas=[0.9, 0.999]"],
}


def run_setting(shards: str, overrides: Sequence[str], steps: int, block: int) -> list[dict[str, float]]:
    """D loss and scores, averaged per block of steps, for one setting."""
    fixed = ["gan.d_steps=1", "gan.diffaugment=[]", "gan.instance_noise=0"]
    params, models, batches = gan_on_shards(shards, [*fixed, *overrides])
    rows = [train_step(models, batches, params.gan, step, "cpu") for step in range(steps)]
    table = np.array([[row["d_loss"], row["d_real"], row["d_fake"]] for row in rows])
    return [
        dict(zip(("d_loss", "d_real", "d_fake"), np.round(table[i : i + block].mean(axis=0), 3).tolist()))
        for i in range(0, steps, block)
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shards", default="data/shards/real")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    results = {name: run_setting(args.shards, ov, args.steps, args.block) for name, ov in SETTINGS.items()}
    report("gan_balance", {"steps": args.steps, "block": args.block, "settings": results}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
