"""Differentiable augmentation (DiffAugment; Zhao et al., NeurIPS 2020) for GANs on small data.

The same random transforms are applied to every image D sees, real and fake alike, and gradients
flow through them into G. Images are ``B x 3 x H x W`` in [-1, 1]; each image gets its own random
parameters, drawn from torch's global RNG on the images' device (so they are saved and restored
with the rest of the RNG state, and a resumed run draws the same ones).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

TRANSLATION_RATIO = 0.125
"""Largest shift, as a fraction of the image side."""
CUTOUT_RATIO = 0.5
"""Side of the erased square, as a fraction of the image side."""


def _uniform(x: torch.Tensor) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device)


def color(x: torch.Tensor) -> torch.Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5) per image."""
    x = x + (_uniform(x) - 0.5)
    gray = x.mean(dim=1, keepdim=True)
    x = (x - gray) * (_uniform(x) * 2.0) + gray
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = TRANSLATION_RATIO) -> torch.Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its side, filling with zeros."""
    batch, _, height, width = x.shape
    max_dy, max_dx = round(height * ratio), round(width * ratio)
    dy = torch.randint(-max_dy, max_dy + 1, (batch, 1, 1), device=x.device)
    dx = torch.randint(-max_dx, max_dx + 1, (batch, 1, 1), device=x.device)
    rows = torch.arange(height, device=x.device).view(1, height, 1) + dy + max_dy
    cols = torch.arange(width, device=x.device).view(1, 1, width) + dx + max_dx
    padded = F.pad(x, (max_dx, max_dx, max_dy, max_dy))
    index = torch.arange(batch, device=x.device).view(batch, 1, 1)
    # padded[b, :, rows[b, i, 0], cols[b, 0, j]] for every (i, j): channels move to the end
    return padded.permute(0, 2, 3, 1)[index, rows, cols].permute(0, 3, 1, 2).contiguous()


def cutout(x: torch.Tensor, ratio: float = CUTOUT_RATIO) -> torch.Tensor:
    """Zero one square of side ``ratio`` x the image side at a random place in each image."""
    batch, _, height, width = x.shape
    size_y, size_x = round(height * ratio), round(width * ratio)
    top = torch.randint(0, height + (1 - size_y % 2), (batch, 1, 1), device=x.device) - size_y // 2
    left = torch.randint(0, width + (1 - size_x % 2), (batch, 1, 1), device=x.device) - size_x // 2
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    inside = (rows >= top) & (rows < top + size_y) & (cols >= left) & (cols < left + size_x)
    return x * (~inside).unsqueeze(1).to(x.dtype)


AUGMENTATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "color": color,
    "translation": translation,
    "cutout": cutout,
}
"""Policy names -> transforms, applied in this order."""


def diff_augment(x: torch.Tensor, policy: Sequence[str]) -> torch.Tensor:
    """Apply the transforms named in ``policy`` (``color``, ``translation``, ``cutout``) in order."""
    unknown = [name for name in policy if name not in AUGMENTATIONS]
    if unknown:
        raise ValueError(f"unknown DiffAugment transform(s) {unknown}; known: {', '.join(AUGMENTATIONS)}")
    for name in AUGMENTATIONS:
        if name in policy:
            x = AUGMENTATIONS[name](x)
    return x
