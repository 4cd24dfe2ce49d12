"""Self-supervised heads on M's encoder: a SimCLR projection and an image reconstruction decoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class SimCLRHead(nn.Module):
    """Projection of pooled encoder features ``B x F`` -> ``B x dim``.

    ``hidden=None`` is the authors' single linear layer; otherwise Linear-ReLU-Linear (SimCLR's MLP).
    """

    def __init__(self, in_features: int, dim: int = 64, hidden: int | None = None) -> None:
        super().__init__()
        if hidden is None:
            self.project: nn.Module = nn.Linear(in_features, dim)
        else:
            self.project = nn.Sequential(
                nn.Linear(in_features, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim)
            )

    def forward(self, pooled: Tensor) -> Tensor:
        return self.project(pooled)


class ReconstructionHead(nn.Module):
    """Encoder feature map -> RGB image ``B x 3 x out_size x out_size`` in [0, 1].

    One (4x4 stride-2 transposed conv, BN, ReLU) stage per entry of ``channels``, a 3x3 conv to RGB,
    bilinear resizing to exactly ``out_size`` and a sigmoid.
    """

    def __init__(self, in_channels: int, out_size: int, channels: Sequence[int] = (64, 32, 16)) -> None:
        super().__init__()
        self.out_size = out_size
        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [
                nn.ConvTranspose2d(previous, width, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.stages = nn.Sequential(*layers)
        self.to_rgb = nn.Conv2d(previous, 3, 3, padding=1)

    def forward(self, feature_map: Tensor) -> Tensor:
        out = self.to_rgb(self.stages(feature_map))
        if out.shape[-2:] != (self.out_size, self.out_size):
            out = F.interpolate(
                out, size=(self.out_size, self.out_size), mode="bilinear", align_corners=False
            )
        return torch.sigmoid(out)
