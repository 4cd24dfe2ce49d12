"""Loading a trained generator and sampling from it: what ``synthesize`` and the grids need.

A ``train_gan`` checkpoint (kind :data:`CHECKPOINT_KIND`) holds the SAGAN config, G, its EMA and D;
:func:`load_generator` rebuilds the EMA generator and checks it against the params' architecture.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pipeline.checkpoint import (
    CheckpointError,
    load_checkpoint,
    load_state_strict,
)
from pipeline.config import Params
from pipeline.data.reader import read_summary
from pipeline.errors import ParamsError
from pipeline.models.sagan import Generator, SaganConfig

CHECKPOINT_KIND = "mgm-sagan"


def sagan_config(params: Params, num_classes: int, resolution: int) -> SaganConfig:
    """The architecture the ``gan`` params describe at ``resolution`` (the real shard set's)."""
    gan = params.gan
    try:
        return SaganConfig(
            resolution=resolution,
            num_classes=num_classes,
            latent_dim=gan.latent_dim,
            g_width=gan.g_width,
            d_width=gan.d_width,
            attention_resolution=gan.attention_resolution,
            g_spectral_norm=gan.g_spectral_norm,
            conditioning=gan.conditioning,
        )
    except ValueError as err:
        raise ParamsError(f"gan (at the shards' resolution {resolution} px): {err}") from None


def config_differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """``key: stored vs wanted`` for every key whose value differs."""
    keys = sorted(set(stored) | set(wanted))
    return [
        f"{key}: checkpoint {stored.get(key)!r} vs params {wanted.get(key)!r}"
        for key in keys
        if stored.get(key) != wanted.get(key)
    ]


def load_generator(
    path: str | Path, expected: SaganConfig | None = None, device: str | torch.device = "cpu"
) -> tuple[Generator, dict[str, Any]]:
    """The EMA generator of a ``train_gan`` checkpoint, in eval mode, and the checkpoint dict.

    With ``expected``, a checkpoint trained for another architecture (resolution, widths, latent
    size, attention, spectral norm, conditioning scheme, number of scene classes) is a
    :class:`CheckpointError` naming each difference.
    """
    state = load_checkpoint(path, map_location="cpu")
    if state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(f"checkpoint {path} is not a train_gan checkpoint (kind {state.get('kind')!r})")
    stored = state["config"]["sagan"]
    if expected is not None:
        problems = config_differences(stored, expected.as_dict())
        if problems:
            raise CheckpointError(
                f"checkpoint {path} does not match the params ({'; '.join(problems)}): "
                "set gan.* to the checkpoint's values (and shard at its resolution) or pick another one"
            )
    generator = Generator(SaganConfig(**stored))
    load_state_strict(generator, state["generator_ema"], f"checkpoint {path} (generator_ema)")
    return generator.to(device).eval(), state


def real_label_counts(real_folder: str | Path, include_weak: bool = False) -> np.ndarray:
    """Images per scene class in the real training split(s), from the shard set's summary."""
    summary = read_summary(real_folder)
    names = summary["scene_names"]
    counts = np.zeros(len(names), dtype=np.int64)
    for split in ("train", "weak") if include_weak else ("train",):
        for name, count in summary["splits"].get(split, {}).get("scenes", {}).items():
            counts[names.index(name)] += count
    return counts


def allocate_labels(weights: Sequence[float], total: int, seed: int) -> np.ndarray:
    """``total`` labels in proportion to ``weights`` (largest remainder), in a seeded random order."""
    weights = np.asarray(weights, dtype=np.float64)
    if total <= 0:
        raise ValueError(f"count must be positive, got {total}")
    if weights.sum() <= 0:
        raise ValueError("no scene class has a positive weight")
    exact = weights / weights.sum() * total
    counts = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: total - counts.sum()]] += 1
    labels = np.repeat(np.arange(len(weights)), counts)
    return np.random.default_rng([seed, 0x1ABE1]).permutation(labels)


def to_uint8(images: Tensor) -> np.ndarray:
    """``B x 3 x H x W`` in [-1, 1] -> uint8 ``B x H x W x 3``."""
    scaled = ((images.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def generate(
    generator: Generator, z: Tensor, labels: Tensor, batch_size: int, device: torch.device
) -> np.ndarray:
    """uint8 images of ``generator`` (eval mode) for the given latents and labels, in batches."""
    generator.eval()
    chunks = [
        to_uint8(generator(z[i : i + batch_size].to(device), labels[i : i + batch_size].to(device)))
        for i in range(0, len(labels), batch_size)
    ]
    return np.concatenate(chunks)


@torch.no_grad()
def set_standing_statistics(
    generator: Generator, z: Tensor, labels: Tensor, batch_size: int, device: torch.device
) -> None:
    """Replace G's batch-norm running statistics by their plain average over ``z``/``labels`` in
    batches ("standing statistics", BigGAN): an EMA copy of G would otherwise sample with the
    training G's statistics, which belong to other weights. Leaves G in eval mode; the global RNG
    is untouched (the latents are the caller's)."""
    norms = [module for module in generator.modules() if isinstance(module, torch.nn.BatchNorm2d)]
    momenta = [norm.momentum for norm in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches below
    generator.train()
    try:
        for i in range(0, len(labels), batch_size):
            generator(z[i : i + batch_size].to(device), labels[i : i + batch_size].to(device))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        generator.eval()


def fixed_latents(count: int, latent_dim: int, seed: int) -> Tensor:
    """``count`` latents from a private generator (the global RNG is untouched)."""
    return torch.randn(count, latent_dim, generator=torch.Generator().manual_seed(seed))
