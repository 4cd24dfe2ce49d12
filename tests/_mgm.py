"""Tiny real shards (with a weak split), a tiny train_gan checkpoint and params for the MGM tests."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Params, load_params
from pipeline.data.sharding import shard_dataset
from pipeline.train.gan.loop import train_gan
from tests._gan import TINY_GAN
from tests._tiny_mt import TINY_MODEL

TINY_MGM = [
    "mgm.batch_size=4",
    "mgm.epochs=2",
    "runtime.device=cpu",
    "runtime.threads=1",
    "mgm.refinement_width=8",
    "mgm.refinement_hidden=16",
    "ssl.dim=8",
    "mgm.sample_every=2",
    "mgm.grid_columns=2",
    "mgm.lr=0.003",
]


def make_mgm_root(root: Path) -> Path:
    """``root/real``: 16 rooms train images at 32 px (12 labelled + 4 weak), 4 val, 4 test;
    ``root/gan/best.pt``: a one-step tiny train_gan checkpoint on them."""
    shards = load_params(
        None,
        [
            f"shard.out={root / 'real'}",
            "data.resolution=32",
            "data.rooms.train=16",
            "data.label_fraction=0.75",
            "data.rooms.val=4",
            "data.rooms.test=4",
            "shard.samples_per_shard=4",
            "shard.workers=0",
        ],
    )
    shard_dataset(shards, progress=False)
    train_gan(gan_params(root, "gan.steps=1", "gan.fid_splits=[val]", "gan.fid_images=4"), progress=False)
    return root


def gan_params(root: Path, *overrides: str) -> Params:
    """The tiny GAN of ``tests._gan`` on ``root/real``, outputs under ``root/gan``."""
    paths = [f"shard.out={root / 'real'}", f"gan.out={root / 'gan'}", f"gan.plots={root / 'gan_plots'}"]
    return load_params(None, [*TINY_GAN, *paths, *overrides])


def mgm_overrides(root: Path, out: str = "mgm", *overrides: str) -> list[str]:
    """``--set`` values: tiny M (widths 8), R, SSL head and the tiny GAN; MGM outputs under ``root/<out>``."""
    paths = [
        f"shard.out={root / 'real'}",
        f"mgm.gan_checkpoint={root / 'gan' / 'best.pt'}",
        f"mgm.out={root / out}",
        f"mgm.plots={root / out / 'plots'}",
        f"synthesize.out={root / 'synthetic'}",
    ]
    return [*TINY_GAN, *TINY_MODEL, *TINY_MGM, *paths, *overrides]


def mgm_params(root: Path, out: str = "mgm", *overrides: str) -> Params:
    """:func:`mgm_overrides` as validated params."""
    return load_params(None, mgm_overrides(root, out, *overrides))
