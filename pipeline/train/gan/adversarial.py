"""The adversarial update shared by ``train_gan`` and the MGM joint loop: hinge losses, what D
sees (DiffAugment, instance noise), the EMA of G.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pipeline.train.gan.diffaugment import diff_augment


def hinge_d_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """``mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))``."""
    return torch.relu(1.0 - real_logits).mean() + torch.relu(1.0 + fake_logits).mean()


def hinge_g_loss(fake_logits: Tensor) -> Tensor:
    """``-mean(D(fake))``."""
    return -fake_logits.mean()


def ema_decay_at(step: int, decay: float) -> float:
    """EMA decay with warm-up: ``min(decay, (1 + step) / (10 + step))``, so early weights fade fast."""
    return min(decay, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """``ema = decay * ema + (1 - decay) * model`` for parameters; buffers (BN stats, SN vectors) copied."""
    for ema_param, param in zip(ema.parameters(), model.parameters()):
        ema_param.lerp_(param, 1.0 - decay)
    for ema_buffer, buffer in zip(ema.buffers(), model.buffers()):
        ema_buffer.copy_(buffer)


def discriminator_input(images: Tensor, policy: Sequence[str], noise_std: float) -> Tensor:
    """What D sees: DiffAugment, then instance noise N(0, std^2)."""
    if policy:
        images = diff_augment(images, policy)
    if noise_std > 0:
        images = images + noise_std * torch.randn_like(images)
    return images


def discriminator_loss(
    discriminator: nn.Module,
    real: Tensor,
    fake: Tensor,
    labels: Tensor,
    policy: Sequence[str],
    noise_std: float,
) -> tuple[Tensor, dict[str, float]]:
    """D's hinge loss on a real and a (detached) fake batch as D sees them, and the mean logits.

    The one definition of D's objective: ``train_gan`` and the MGM joint loop's step 4 both call it.
    """
    real_logits = discriminator(discriminator_input(real, policy, noise_std), labels)
    fake_logits = discriminator(discriminator_input(fake, policy, noise_std), labels)
    stats = {"d_real": float(real_logits.detach().mean()), "d_fake": float(fake_logits.detach().mean())}
    return hinge_d_loss(real_logits, fake_logits), stats


def generator_loss(
    discriminator: nn.Module, fake: Tensor, labels: Tensor, policy: Sequence[str], noise_std: float
) -> Tensor:
    """G's hinge loss on its fakes as D sees them (shared as :func:`discriminator_loss` is)."""
    return hinge_g_loss(discriminator(discriminator_input(fake, policy, noise_std), labels))
