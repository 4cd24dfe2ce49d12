"""Self-supervised losses on M's encoder: SimCLR (NT-Xent on two augmented views) or reconstruction.

``ssl_loss`` takes images in [0, 1] (convert GAN images with ``(x + 1) / 2`` first).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.config import SslParams
from pipeline.errors import ParamsError
from pipeline.models.multitask import MultiTaskNet
from pipeline.models.ssl import ReconstructionHead, SimCLRHead

SSL_KINDS = ("simclr", "recon", "none")
SEED_BOUND = 2**63 - 1


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """SimCLR's NT-Xent: cosine similarity over the 2N embeddings, each anchor's positive is its
    other view, the other 2N - 2 are negatives; cross-entropy averaged over the 2N anchors."""
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(f"nt_xent: views must both be N x D, got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if temperature <= 0:
        raise ValueError(f"nt_xent: temperature must be positive, got {temperature}")
    count = z1.shape[0]
    embeddings = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = embeddings @ embeddings.T / temperature
    self_mask = torch.eye(2 * count, dtype=torch.bool, device=logits.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    index = torch.arange(count, device=logits.device)
    positives = torch.cat([index + count, index])
    return F.cross_entropy(logits, positives)


def blur_kernel_size(size: int) -> int:
    """About 10 % of the image side, odd, at least 3 (SimCLR's choice)."""
    kernel = max(3, round(0.1 * size))
    return kernel if kernel % 2 else kernel + 1


class BatchAugment:
    """SimCLR augmentations drawn independently for every sample of a batch.

    Random resized crop to ``size``, horizontal flip, colour jitter with probability ``jitter_p``,
    grayscale with ``gray_p``, Gaussian blur (sigma 0.1..2) with ``blur_p``. Kornia's batched,
    differentiable augmentations (the torchvision ones transform one image at a time: 4-5x slower
    on a batch of 32 at 64 px, docs/benchmarks.md); the crop resamples every sample through one
    batched affine warp. With a ``generator`` the draws come from it (each call seeds a forked
    copy of torch's global RNG, which the caller's stream never notices); without one they come
    from the global RNG, as kornia's do.
    """

    def __init__(
        self,
        size: int,
        crop_scale: Sequence[float] = (0.2, 1.0),
        jitter: Sequence[float] = (0.8, 0.8, 0.8, 0.2),
        jitter_p: float = 0.8,
        gray_p: float = 0.2,
        blur_p: float = 0.5,
        generator: torch.Generator | None = None,
    ) -> None:
        import kornia.augmentation as K  # imported here: only SimCLR needs it

        self.size = size
        self.generator = generator
        kernel = blur_kernel_size(size)
        self.transform = nn.Sequential(
            K.RandomResizedCrop((size, size), scale=tuple(crop_scale), cropping_mode="resample"),
            K.RandomHorizontalFlip(),
            K.ColorJitter(*jitter, p=jitter_p),
            K.RandomGrayscale(p=gray_p),
            K.RandomGaussianBlur((kernel, kernel), (0.1, 2.0), p=blur_p),
        )

    def __call__(self, images: Tensor) -> Tensor:
        if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
            raise ValueError(
                f"BatchAugment: expected float images B x 3 x H x W in [0, 1], "
                f"got {images.dtype} {tuple(images.shape)}"
            )
        if self.generator is None:
            return self._apply(images)
        seed = int(torch.randint(0, SEED_BOUND, (1,), generator=self.generator))
        with torch.random.fork_rng(devices=[images.device] if images.is_cuda else []):
            torch.manual_seed(seed)
            return self._apply(images)

    def _apply(self, images: Tensor) -> Tensor:
        return self.transform(images).clamp(0.0, 1.0)


def build_views(ssl: SslParams, resolution: int, generator: torch.Generator | None = None) -> BatchAugment:
    """SimCLR's view augmentation as the ``ssl`` params set it (crop range, jitter, probabilities)."""
    return BatchAugment(
        resolution,
        crop_scale=ssl.crop_scale,
        jitter=ssl.jitter,
        jitter_p=ssl.jitter_p,
        gray_p=ssl.gray_p,
        blur_p=ssl.blur_p,
        generator=generator,
    )


def build_ssl_head(
    kind: str,
    feature_channels: int,
    resolution: int,
    dim: int,
    *,
    hidden: int | None = None,
    channels: Sequence[int] = (64, 32, 16),
    param: str = "mgm.ssl",
) -> nn.Module | None:
    """The head for ``kind``: SimCLRHead (simclr), ReconstructionHead (recon) or None (none)."""
    if kind == "simclr":
        return SimCLRHead(feature_channels, dim, hidden)
    if kind == "recon":
        return ReconstructionHead(feature_channels, resolution, channels)
    if kind == "none":
        return None
    raise ParamsError(f"{param}: unknown self-supervised loss {kind!r} ({' | '.join(SSL_KINDS)})")


def ssl_loss(
    kind: str,
    net: MultiTaskNet,
    head: nn.Module | None,
    images: Tensor,
    augment: BatchAugment,
    temperature: float,
    *,
    param: str = "mgm.ssl",
) -> Tensor:
    """The self-supervised loss of M's encoder on ``images`` (B x 3 x H x W in [0, 1]).

    simclr: two augmented views through one ``net.features`` pass (batch 2B), ``head``, NT-Xent.
    recon: ``head(net.encoder(images))`` vs the images, mean squared error.
    none: a constant zero without a graph.
    """
    if kind == "none":
        return images.new_zeros(())
    if kind not in SSL_KINDS:
        raise ParamsError(f"{param}: unknown self-supervised loss {kind!r} ({' | '.join(SSL_KINDS)})")
    if head is None:
        raise ValueError(f"ssl_loss: {param}={kind} needs a head (see build_ssl_head)")
    if kind == "simclr":
        views = torch.cat([augment(images), augment(images)])
        z1, z2 = head(net.features(views)).chunk(2)
        return nt_xent(z1, z2, temperature)
    reconstruction = head(net.encoder(images))
    if reconstruction.shape != images.shape:
        raise ValueError(
            f"ssl_loss: reconstruction {tuple(reconstruction.shape)} does not match the images "
            f"{tuple(images.shape)} (the head was built for another resolution)"
        )
    return F.mse_loss(reconstruction, images)
