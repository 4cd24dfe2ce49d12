"""Conditional SAGAN: a generator and a projection discriminator conditioned on the scene label.

* Generator: latent ``z`` -> linear -> 4x4 map -> up-sampling residual blocks, each with
  conditional batch norm -> BN, ReLU, 3x3 conv, ``tanh``. Output in [-1, 1] at 32, 64 or 128 px
  (one block per doubling from 4 px). Two conditioning schemes (``conditioning``):
  ``class_bn`` looks up a gain and bias per class for every batch norm (SAGAN's); ``shared``
  embeds the class once and projects that embedding linearly into every batch norm's gain and
  bias (BigGAN's shared embedding), so every layer's conditioning trains one embedding together.
* Discriminator: down-sampling residual blocks -> ReLU -> sum pooling -> a linear score plus the
  projection term ``<embed(label), features>`` (Miyato & Koyama, 2018).
* Self-attention (Zhang et al., 2019) in both, at a chosen feature resolution.
* Spectral norm (``torch.nn.utils.parametrizations.spectral_norm``) on every conv, linear and
  embedding of D, and (``g_spectral_norm``) on every conv and linear of G. The CPU default goes
  without it in G, as the cheap recipe that learned did (its step cost is only +3 %:
  ``bench/bench_gan_step.py``).

Widths: G's feature maps from 4 px up have ``g_width`` times the last ``blocks + 1`` entries of
``(8, 8, 8, 4, 2, 1)`` channels (64 px: 8, 8, 4, 2, 1); D mirrors them with ``d_width`` (64 px:
1, 2, 4, 8 on the way down, then a 3x3 conv with 8 at 4 px). Self-attention sits in G after the
block that outputs ``attention_resolution``, in D after the block that outputs
``min(attention_resolution, resolution / 2)``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

SUPPORTED_RESOLUTIONS = (32, 64, 128)
CONDITIONING_SCHEMES = ("class_bn", "shared")


@dataclass(frozen=True)
class SaganConfig:
    """Everything that fixes the shapes of G and D (stored in checkpoints and compared on load)."""

    resolution: int = 64
    num_classes: int = 6
    latent_dim: int = 128
    g_width: int = 32
    d_width: int = 32
    attention_resolution: int = 32
    g_spectral_norm: bool = True
    conditioning: str = "class_bn"

    def __post_init__(self) -> None:
        if self.resolution not in SUPPORTED_RESOLUTIONS:
            raise ValueError(f"resolution {self.resolution}: supported are {SUPPORTED_RESOLUTIONS}")
        if self.num_classes < 1 or self.latent_dim < 1 or self.g_width < 1 or self.d_width < 1:
            raise ValueError(f"num_classes, latent_dim and widths must be positive: {self}")
        if self.conditioning not in CONDITIONING_SCHEMES:
            raise ValueError(f"conditioning {self.conditioning!r}: use one of {CONDITIONING_SCHEMES}")
        attention = self.attention_resolution
        if attention and (attention < 8 or attention > self.resolution or attention & (attention - 1)):
            raise ValueError(
                f"attention_resolution {attention}: use 0 (none) or a power of two in [8, {self.resolution}]"
            )

    @property
    def num_blocks(self) -> int:
        """Residual blocks of G (and down-sampling blocks of D): one per doubling from 4 px."""
        return int(math.log2(self.resolution // 4))

    def as_dict(self) -> dict[str, int | bool | str]:
        return asdict(self)


def channel_multipliers(num_blocks: int) -> list[int]:
    """Multipliers of G's widths from 4 px up: the last ``num_blocks + 1`` of ``8, 8, 8, 4, 2, 1``."""
    full = [8, 8, 8, 4, 2, 1]
    return full[-(num_blocks + 1) :]


def sn_conv(in_ch: int, out_ch: int, kernel: int = 3, padding: int = 1, sn: bool = True) -> nn.Module:
    conv = nn.Conv2d(in_ch, out_ch, kernel, padding=padding)
    return spectral_norm(conv) if sn else conv


def sn_linear(in_features: int, out_features: int, bias: bool = True, sn: bool = True) -> nn.Module:
    linear = nn.Linear(in_features, out_features, bias=bias)
    return spectral_norm(linear) if sn else linear


class SelfAttention(nn.Module):
    """SAGAN self-attention with spectral-norm 1x1 convs and a learned gate ``gamma`` (starts at 0)."""

    def __init__(self, channels: int, sn: bool = True) -> None:
        super().__init__()
        inner = max(channels // 8, 1)
        self.query = sn_conv(channels, inner, 1, 0, sn)
        self.key = sn_conv(channels, inner, 1, 0, sn)
        self.value = sn_conv(channels, max(channels // 2, 1), 1, 0, sn)
        self.out = sn_conv(max(channels // 2, 1), channels, 1, 0, sn)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        query = self.query(x).flatten(2)  # B x C' x N
        key = F.max_pool2d(self.key(x), 2).flatten(2)  # B x C' x N/4
        value = F.max_pool2d(self.value(x), 2).flatten(2)  # B x C/2 x N/4
        attention = torch.softmax(query.transpose(1, 2) @ key, dim=-1)  # B x N x N/4
        mixed = (value @ attention.transpose(1, 2)).view(batch, -1, height, width)
        return x + self.gamma * self.out(mixed)


class ConditionalBatchNorm(nn.Module):
    """Batch norm without affine parameters, then a gain and bias looked up per class."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Embedding(num_classes, channels)
        self.bias = nn.Embedding(num_classes, channels)
        nn.init.normal_(self.gain.weight, 1.0, 0.02)  # near identity, but distinct per class from the start
        nn.init.normal_(self.bias.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """``condition``: the scene labels (a ``B`` long tensor)."""
        gain = self.gain(condition)[:, :, None, None]
        bias = self.bias(condition)[:, :, None, None]
        return self.norm(x) * gain + bias


class ProjectedBatchNorm(nn.Module):
    """Batch norm without affine parameters, then ``1 + W_g c`` and ``W_b c`` from a shared class
    embedding ``c``: the BigGAN form. The maps start at zero, so G starts unconditional and each
    class moves away from the identity as far as the gradients take it; they carry no spectral
    norm (a zero matrix has none, and sigma = 1 would scale a unit-variance ``c`` to gains of ~10)."""

    def __init__(self, channels: int, embedding_dim: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(embedding_dim, channels, bias=False)
        self.bias = nn.Linear(embedding_dim, channels, bias=False)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """``condition``: the shared class embedding of each image (``B x embedding_dim``)."""
        gain = 1.0 + self.gain(condition)[:, :, None, None]
        bias = self.bias(condition)[:, :, None, None]
        return self.norm(x) * gain + bias


def conditional_norm(channels: int, config: SaganConfig) -> nn.Module:
    """The batch norm of ``config.conditioning``."""
    if config.conditioning == "shared":
        return ProjectedBatchNorm(channels, config.latent_dim)
    return ConditionalBatchNorm(channels, config.num_classes)


class GeneratorBlock(nn.Module):
    """CBN-ReLU-up-conv-CBN-ReLU-conv with an up-sampled 1x1 shortcut."""

    def __init__(self, in_ch: int, out_ch: int, config: SaganConfig) -> None:
        super().__init__()
        sn = config.g_spectral_norm
        self.bn1 = conditional_norm(in_ch, config)
        self.conv1 = sn_conv(in_ch, out_ch, sn=sn)
        self.bn2 = conditional_norm(out_ch, config)
        self.conv2 = sn_conv(out_ch, out_ch, sn=sn)
        self.shortcut = sn_conv(in_ch, out_ch, 1, 0, sn=sn)

    def forward(self, x: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, condition)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), condition)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    """``G(z, label)`` -> images in [-1, 1], ``3 x resolution x resolution``."""

    def __init__(self, config: SaganConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.g_width * m for m in channel_multipliers(config.num_blocks)]
        self.base_channels = widths[0]
        sn = config.g_spectral_norm
        self.linear = sn_linear(config.latent_dim, 4 * 4 * widths[0], sn=sn)
        # shared conditioning: one embedding per class, projected into every batch norm
        self.class_embedding = (
            nn.Embedding(config.num_classes, config.latent_dim) if config.conditioning == "shared" else None
        )
        self.blocks = nn.ModuleList()
        self.attention_after: int | None = None
        size = 4
        for index, (in_ch, out_ch) in enumerate(zip(widths[:-1], widths[1:])):
            self.blocks.append(GeneratorBlock(in_ch, out_ch, config))
            size *= 2
            if size == config.attention_resolution:
                self.attention_after = index
        self.attention = (
            SelfAttention(widths[self.attention_after + 1], sn) if self.attention_after is not None else None
        )
        self.out_norm = nn.BatchNorm2d(widths[-1])
        self.out_conv = sn_conv(widths[-1], 3, sn=sn)

    def class_parameters(self) -> list[nn.Parameter]:
        """The parameters that carry the scene label (class embeddings and their projections)."""
        return [param for name, param in self.named_parameters() if is_class_parameter(name)]

    def forward(self, z: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        check_labels(label, self.config.num_classes, "generator")
        condition = self.class_embedding(label) if self.class_embedding is not None else label
        h = self.linear(z).view(z.shape[0], self.base_channels, 4, 4)
        for index, block in enumerate(self.blocks):
            h = block(h, condition)
            if index == self.attention_after:
                h = self.attention(h)
        return torch.tanh(self.out_conv(F.relu(self.out_norm(h))))


class DiscriminatorBlock(nn.Module):
    """(ReLU)-conv-ReLU-conv-avgpool with a 1x1 conv + avgpool shortcut."""

    def __init__(self, in_ch: int, out_ch: int, first: bool) -> None:
        super().__init__()
        self.first = first
        self.conv1 = sn_conv(in_ch, out_ch)
        self.conv2 = sn_conv(out_ch, out_ch)
        self.shortcut = sn_conv(in_ch, out_ch, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        if self.first:
            return h + self.shortcut(F.avg_pool2d(x, 2))
        return h + F.avg_pool2d(self.shortcut(x), 2)


class Discriminator(nn.Module):
    """Projection discriminator ``D(x, label)`` -> one unbounded score per image."""

    def __init__(self, config: SaganConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.d_width * m for m in reversed(channel_multipliers(config.num_blocks))]
        channels = [3, *widths[:-1]]
        self.blocks = nn.ModuleList()
        self.attention_after: int | None = None
        attention_at = min(config.attention_resolution, config.resolution // 2)
        size = config.resolution
        for index, (in_ch, out_ch) in enumerate(zip(channels[:-1], channels[1:])):
            self.blocks.append(DiscriminatorBlock(in_ch, out_ch, first=index == 0))
            size //= 2
            if config.attention_resolution and size == attention_at:
                self.attention_after = index
        self.attention = (
            SelfAttention(channels[self.attention_after + 1]) if self.attention_after is not None else None
        )
        self.final_conv = sn_conv(channels[-1], widths[-1])
        self.linear = sn_linear(widths[-1], 1)
        self.embed = spectral_norm(nn.Embedding(config.num_classes, widths[-1]))

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        check_labels(label, self.config.num_classes, "discriminator")
        h = x
        for index, block in enumerate(self.blocks):
            h = block(h)
            if index == self.attention_after:
                h = self.attention(h)
        features = F.relu(self.final_conv(F.relu(h))).sum(dim=(2, 3))
        return self.linear(features).squeeze(1) + (self.embed(label) * features).sum(dim=1)


def is_class_parameter(name: str) -> bool:
    """Whether G's parameter ``name`` conditions on the class (embedding, BN gain/bias maps)."""
    return name.startswith("class_embedding.") or ".bn1." in name or ".bn2." in name


def check_labels(label: torch.Tensor, num_classes: int, where: str) -> None:
    """Raise a clear error for scene labels outside ``0..num_classes-1``."""
    if label.numel() and (int(label.min()) < 0 or int(label.max()) >= num_classes):
        bad = sorted({int(v) for v in label.flatten().tolist() if not 0 <= v < num_classes})
        raise ValueError(f"{where}: unknown scene label(s) {bad}; the model has {num_classes} scene classes")


def build_sagan(config: SaganConfig) -> tuple[Generator, Discriminator]:
    """A fresh (G, D) pair for ``config``."""
    return Generator(config), Discriminator(config)
