"""One factory for the toy-sized projects the tests train on: real shard sets, params, a GAN checkpoint.

``TINY`` holds the toy size of every section once (networks of width 4-16, 32 px, batches of 4,
the tiny FID extractor, CPU, one thread); :class:`TinyProject` puts every output of a project under
one temporary folder. ``PIPELINE`` is ``TINY`` shortened to one epoch or step per training stage,
for the tests that run the whole pipeline through DVC or Prefect.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Params, load_params
from pipeline.data.sharding import shard_dataset

TINY: dict[str, Any] = {
    "data.resolution": 32,
    "shard.workers": 0,
    "data.rooms.reference": 4,
    "runtime.device": "cpu",
    "runtime.threads": 1,
    "model.encoder": "halfwidth34",
    "model.encoder_widths": [8, 8, 16, 16],
    "model.decoder_channels": [16, 8, 8, 8, 8],
    "ssl.dim": 8,
    "train_mt.batch_size": 4,
    "train_mt.epochs": 2,
    "train_mt.lr": 0.003,
    "train_mt.variants": ["st", "mt"],
    "evaluate.grid_samples": 2,
    "evaluate.checkpoints": {},
    "gan.g_width": 4,
    "gan.d_width": 4,
    "gan.latent_dim": 16,
    "gan.attention_resolution": 16,
    "gan.batch_size": 4,
    "gan.eval_images": 4,
    "gan.standing_batches": 1,
    "gan.fid_extractor": "tiny",
    "gan.grid_columns": 2,
    "synthesize.fid_extractor": "tiny",
    "mgm.batch_size": 4,
    "mgm.epochs": 2,
    "mgm.lr": 0.003,
    "mgm.refinement_width": 8,
    "mgm.refinement_hidden": 16,
    "mgm.sample_every": 2,
    "mgm.grid_columns": 2,
}
"""Dotted key -> toy value, for every section the tests train."""

PIPELINE: dict[str, Any] = {
    **TINY,
    "data.rooms.train": 8,
    "data.rooms.val": 4,
    "data.rooms.test": 4,
    "train_mt.epochs": 1,
    "train_mt.variants": ["st", "mt", "mgm-shards"],
    "evaluate.checkpoints": {"mgm": "models/mgm/best.pt"},
    "gan.steps": 1,
    "synthesize.count": 8,
    "synthesize.batch_size": 8,
    "mgm.epochs": 1,
    "flow.retries": 0,
    "flow.retry_delay_seconds": 0,
}
"""The whole pipeline at toy size with every output at its default path (DVC and Prefect tests)."""


def as_overrides(values: dict[str, Any]) -> list[str]:
    """``--set`` strings (JSON is YAML, so every value round-trips)."""
    return [f"{key}={json.dumps(value)}" for key, value in values.items()]


def make_shards(
    folder: Path,
    *,
    train: int = 12,
    val: int = 4,
    test: int = 4,
    reference: int = 4,
    per_shard: int = 3,
    label_fraction: float = 1.0,
    tasks: list[str] | None = None,
) -> Path:
    """A rooms shard set at 32 px in ``folder`` (``label_fraction`` < 1 also fills the weak split;
    ``tasks``: ``model.tasks``, whose map tasks the shards then carry)."""
    values = {
        **{key: TINY[key] for key in ("data.resolution", "shard.workers")},
        "shard.out": str(folder),
        "data.rooms.train": train,
        "data.rooms.val": val,
        "data.rooms.test": test,
        "data.rooms.reference": reference,
        "data.label_fraction": label_fraction,
        "shard.samples_per_shard": per_shard,
        **({"model.tasks": tasks} if tasks else {}),
    }
    shard_dataset(load_params(None, as_overrides(values)), progress=False)
    return folder


@dataclass(frozen=True)
class TinyProject:
    """Every output of a toy project under ``root``; ``shards`` is the real shard set it reads."""

    root: Path
    shards: Path

    def paths(self, name: str = "") -> dict[str, str]:
        """Output params; ``name`` keeps the outputs of one run apart from another's."""
        out = self.root / name if name else self.root
        return {
            "shard.out": str(self.shards),
            "train_mt.out": str(out / "models"),
            "train_mt.plots": str(out / "plots"),
            "evaluate.out": str(out / "reports"),
            "gan.out": str(out / "gan"),
            "gan.plots": str(out / "gan_plots"),
            "synthesize.checkpoint": str(self.root / "gan" / "best.pt"),
            "synthesize.out": str(self.root / "synthetic"),
            "mgm.gan_checkpoint": str(self.root / "gan" / "best.pt"),
            "mgm.out": str(out / "mgm"),
            "mgm.plots": str(out / "mgm" / "plots"),
        }

    def overrides(self, *extra: str, name: str = "") -> list[str]:
        """``--set`` strings of the toy sizes, this project's paths, then ``extra``."""
        return [*as_overrides({**TINY, **self.paths(name)}), *extra]

    def params(self, *extra: str, name: str = "") -> Params:
        """:meth:`overrides` as validated params (no params file)."""
        return load_params(None, self.overrides(*extra, name=name))

    def train_gan(self, *extra: str) -> Path:
        """A one-step GAN checkpoint at ``root/gan/best.pt`` (what train_mgm and synthesize start from)."""
        from pipeline.train.gan.loop import train_gan

        train_gan(self.params("gan.steps=1", *extra), progress=False)
        return self.root / "gan" / "best.pt"


def tiny_project(root: Path, **shards: Any) -> TinyProject:
    """A :class:`TinyProject` in ``root`` with a fresh shard set in ``root/real`` (:func:`make_shards`)."""
    return TinyProject(root, make_shards(root / "real", **shards))


def mgm_project(root: Path) -> TinyProject:
    """16 train images (12 labelled + 4 weak, 4 per shard), 4 val, 4 test, and a one-step GAN."""
    project = tiny_project(root, train=16, label_fraction=0.75, per_shard=4)
    project.train_gan()
    return project


# The call shapes the test modules use, each a line over the factory above.


def mt_params(shards: Path, root: Path, *extra: str) -> Params:
    """Toy params reading ``shards`` with every output under ``root``."""
    return TinyProject(root, shards).params(*extra)


def gan_params(root: Path, *extra: str) -> Params:
    """Toy params of the project at ``root`` (shards in ``root/real``, the GAN in ``root/gan``)."""
    return TinyProject(root, root / "real").params(*extra)


def gan_shards(root: Path) -> Path:
    """``root/real``: 12 train / 8 val / 8 test rooms at 32 px, two shards per split."""
    return make_shards(root / "real", val=8, test=8, per_shard=256)


def mgm_overrides(root: Path, out: str = "mgm", *extra: str) -> list[str]:
    """``--set`` strings of the MGM project at ``root`` with the joint loop's outputs in ``root/<out>``."""
    paths = [f"mgm.out={root / out}", f"mgm.plots={root / out / 'plots'}"]
    return TinyProject(root, root / "real").overrides(*paths, *extra)


def mgm_params(root: Path, out: str = "mgm", *extra: str) -> Params:
    """:func:`mgm_overrides` as validated params."""
    return load_params(None, mgm_overrides(root, out, *extra))
