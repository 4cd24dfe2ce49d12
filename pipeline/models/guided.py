"""The guided latent of MGM: G's input is ``z`` combined with a projection of M's pooled features.

``LatentGuide`` projects the features of a real image (spectral-norm linear + BatchNorm1d, as in
the authors' code) and adds the projection to ``z`` ("add") or appends it ("concat").
``GuidedGenerator`` wraps a SAGAN generator; for "concat" the generator's first linear layer gets
``latent_dim`` more input columns, zero-initialised, so a pre-trained G draws the same images at
the start. Gradients of G's output reach the features, so G's loss trains M's encoder.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from pipeline.errors import ParamsError
from pipeline.models.sagan import Generator, SaganConfig

GUIDE_MODES = ("add", "concat")


class LatentGuide(nn.Module):
    """``(z, features)`` -> G's latent: ``z + proj(features)`` or ``cat([z, proj(features)])``."""

    def __init__(self, feature_channels: int, latent_dim: int, mode: str = "add") -> None:
        super().__init__()
        if mode not in GUIDE_MODES:
            raise ParamsError(f"mgm.guide: unknown guide mode {mode!r} ({' | '.join(GUIDE_MODES)})")
        self.feature_channels = feature_channels
        self.latent_dim = latent_dim
        self.mode = mode
        self.project = spectral_norm(nn.Linear(feature_channels, latent_dim))
        self.norm = nn.BatchNorm1d(latent_dim)

    @property
    def config(self) -> dict[str, Any]:
        """The init arguments (stored in checkpoints)."""
        return {"feature_channels": self.feature_channels, "latent_dim": self.latent_dim, "mode": self.mode}

    @property
    def extra_inputs(self) -> int:
        """How many inputs G's first layer needs beyond ``latent_dim``."""
        return self.latent_dim if self.mode == "concat" else 0

    def forward(self, z: Tensor, features: Tensor) -> Tensor:
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"latent guide: z has shape {tuple(z.shape)}, expected B x {self.latent_dim}")
        if features.ndim != 2 or features.shape != (z.shape[0], self.feature_channels):
            raise ValueError(
                f"latent guide: features have shape {tuple(features.shape)}, "
                f"expected {z.shape[0]} x {self.feature_channels} (pooled encoder features, one per z)"
            )
        projection = self.norm(self.project(features))
        if self.mode == "add":
            return z + projection
        return torch.cat([z, projection], dim=1)


def widen_generator_input(generator: Generator, extra: int) -> Generator:
    """Give ``generator.linear`` ``extra`` more input columns, zero-initialised (in place; returned).

    A plain linear layer (G without spectral norm) gets zero columns. The spectral-norm
    parametrization is re-created on the widened weight with the old power
    iteration vectors (``v`` padded with zeros), so sigma and hence G's output are unchanged; the
    layer keeps the old one's device, dtype, train/eval mode and ``requires_grad``.
    """
    if extra < 0:
        raise ValueError(f"widen_generator_input: extra must be >= 0, got {extra}")
    old = generator.linear
    if extra == 0:
        return generator
    if not parametrize.is_parametrized(old, "weight"):
        generator.linear = _widened_plain_linear(old, extra)
        return generator
    norm = old.parametrizations.weight[0]
    weight = old.parametrizations.weight.original
    out_features, in_features = weight.shape
    # Built on the CPU inside a forked RNG: the init and spectral_norm's random u, v (overwritten
    # below) leave the caller's CPU and CUDA streams untouched.
    with torch.random.fork_rng(devices=[]):
        wide = nn.Linear(in_features + extra, out_features, bias=old.bias is not None)
        wide = spectral_norm(wide, n_power_iterations=norm.n_power_iterations, eps=norm.eps, dim=norm.dim)
    wide = wide.to(device=weight.device, dtype=weight.dtype)
    new_norm = wide.parametrizations.weight[0]
    with torch.no_grad():
        wide.parametrizations.weight.original.zero_()
        wide.parametrizations.weight.original[:, :in_features] = weight
        if old.bias is not None:
            wide.bias.copy_(old.bias)
        new_norm._u.copy_(norm._u)
        new_norm._v.zero_()
        new_norm._v[:in_features] = norm._v
    wide.train(old.training)
    wide.requires_grad_(weight.requires_grad)
    generator.linear = wide
    return generator


def _widened_plain_linear(old: nn.Linear, extra: int) -> nn.Linear:
    """``old`` with ``extra`` zero input columns (a G trained without spectral norm)."""
    with torch.random.fork_rng(devices=[]):
        wide = nn.Linear(old.in_features + extra, old.out_features, bias=old.bias is not None)
    wide = wide.to(device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        wide.weight.zero_()
        wide.weight[:, : old.in_features] = old.weight
        if old.bias is not None:
            wide.bias.copy_(old.bias)
    wide.train(old.training)
    wide.requires_grad_(old.weight.requires_grad)
    return wide


class GuidedGenerator(nn.Module):
    """``G(guide(z, features), label)``; widens G's first layer for a "concat" guide."""

    def __init__(self, generator: Generator, guide: LatentGuide) -> None:
        super().__init__()
        latent_dim = generator.config.latent_dim
        if guide.latent_dim != latent_dim:
            raise ValueError(
                f"guided generator: guide latent_dim {guide.latent_dim} != generator latent_dim {latent_dim}"
            )
        needed = latent_dim + guide.extra_inputs
        current = generator.linear.in_features
        if current == latent_dim and needed > latent_dim:
            widen_generator_input(generator, needed - latent_dim)
        elif current != needed:
            raise ValueError(
                f"guided generator: G's first layer takes {current} inputs, the guide gives {needed}"
            )
        self.generator = generator
        self.guide = guide

    @property
    def config(self) -> SaganConfig:
        """The wrapped generator's :class:`~pipeline.models.sagan.SaganConfig`."""
        return self.generator.config

    def forward(self, z: Tensor, label: Tensor, features: Tensor) -> Tensor:
        return self.generator(self.guide(z, features), label)
