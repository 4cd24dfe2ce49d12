"""Tiny shard sets and params for the multi-task training and evaluation tests (real shards, tiny nets)."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params, load_params
from pipeline.data.sharding import shard_dataset

TINY_MODEL = [
    "model.encoder=halfwidth34",
    "model.encoder_widths=[8,8,16,16]",
    "model.decoder_channels=[16,8,8,8,8]",
]


def tiny_shards(folder: Path, train: int = 12, per_shard: int = 3) -> Path:
    """An embedded-rooms shard set at 32 px: ``train`` train images, 4 val, 4 test."""
    params = load_params(
        None,
        [
            f"shard.out={folder}",
            "data.resolution=32",
            f"data.rooms.train={train}",
            "data.rooms.val=4",
            "data.rooms.test=4",
            f"shard.samples_per_shard={per_shard}",
            "shard.workers=0",
        ],
    )
    shard_dataset(params, progress=False)
    return folder


def tiny_params(shards: Path, root: Path, *overrides: str) -> Params:
    """Params training tiny models on ``shards`` with outputs under ``root``."""
    return load_params(
        None,
        [
            f"shard.out={shards}",
            f"train_mt.out={root / 'models'}",
            f"train_mt.plots={root / 'plots'}",
            f"evaluate.out={root / 'reports'}",
            "train_mt.batch_size=4",
            "train_mt.epochs=2",
            "train_mt.lr=0.003",
            "runtime.device=cpu",
            "runtime.threads=1",
            "runtime.device=cpu",
            "evaluate.grid_samples=2",
            "train_mt.variants=[st, mt]",
            "evaluate.checkpoints={}",
            *TINY_MODEL,
            *overrides,
        ],
    )
