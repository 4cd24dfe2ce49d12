"""Tiny real shard sets and params for the GAN, FID and synthesis tests."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params, load_params
from pipeline.data.sharding import shard_dataset

TINY_GAN = [
    "data.resolution=32",
    "gan.g_width=4",
    "gan.d_width=4",
    "gan.latent_dim=16",
    "gan.attention_resolution=16",
    "gan.batch_size=4",
    "gan.fid_images=8",
    "gan.fid_extractor=tiny",
    "gan.grid_columns=2",
    "runtime.device=cpu",
    "synthesize.fid_extractor=tiny",
    "runtime.device=cpu",
]


def tiny_params(root: Path, *overrides: str) -> Params:
    """Params for 32 px, 4-channel G/D, the tiny extractor, all outputs under ``root``."""
    paths = [
        f"shard.out={root / 'real'}",
        f"gan.out={root / 'gan'}",
        f"gan.plots={root / 'plots'}",
        f"synthesize.checkpoint={root / 'gan' / 'best.pt'}",
        f"synthesize.out={root / 'synthetic'}",
    ]
    return load_params(None, [*TINY_GAN, *paths, *overrides])


def make_real_shards(root: Path) -> Path:
    """12 train / 8 val / 8 test rooms at 32 px under ``root/real``."""
    params = load_params(
        None,
        [
            f"shard.out={root / 'real'}",
            "data.resolution=32",
            "data.rooms.train=12",
            "data.rooms.val=8",
            "data.rooms.test=8",
            "shard.workers=0",
        ],
    )
    shard_dataset(params, progress=False)
    return root / "real"
