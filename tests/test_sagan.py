"""Conditional SAGAN: shapes, conditioning, spectral norm, attention placement, hinge losses."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from pipeline.models.sagan import SaganConfig, SelfAttention, build_sagan
from pipeline.train.gan.adversarial import hinge_d_loss, hinge_g_loss


@pytest.mark.parametrize("resolution", [32, 64, 128])
def test_shapes_at_each_resolution(resolution):
    config = SaganConfig(resolution=resolution, num_classes=3, latent_dim=8, g_width=2, d_width=2)
    generator, discriminator = build_sagan(config)
    labels = torch.tensor([0, 2])
    images = generator(torch.randn(2, 8), labels)
    assert images.shape == (2, 3, resolution, resolution)
    assert images.abs().max() <= 1.0
    assert discriminator(images, labels).shape == (2,)
    assert config.num_blocks == len(generator.blocks) == len(discriminator.blocks)


def test_changing_only_the_label_changes_the_image():
    torch.manual_seed(0)
    generator, _ = build_sagan(SaganConfig(resolution=32, num_classes=4, latent_dim=8, g_width=4, d_width=4))
    generator.eval()
    z = torch.randn(1, 8)
    with torch.no_grad():
        first = generator(z, torch.tensor([0]))
        again = generator(z, torch.tensor([0]))
        other = generator(z, torch.tensor([3]))
    assert torch.equal(first, again)
    assert (first - other).abs().max() > 1e-4


def test_unknown_label_is_a_clear_error():
    generator, discriminator = build_sagan(SaganConfig(resolution=32, num_classes=4, latent_dim=8, g_width=2))
    with pytest.raises(ValueError, match=r"unknown scene label\(s\) \[4\].*4 scene classes"):
        generator(torch.randn(1, 8), torch.tensor([4]))
    with pytest.raises(ValueError, match=r"discriminator: unknown scene label\(s\) \[-1\]"):
        discriminator(torch.zeros(1, 3, 32, 32), torch.tensor([-1]))


def test_spectral_norm_on_every_conv_linear_and_embedding_of_d_and_every_conv_linear_of_g():
    generator, discriminator = build_sagan(SaganConfig(resolution=64, num_classes=3, g_width=2, d_width=2))
    d_layers = [m for m in discriminator.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]
    assert len(d_layers) >= 4 * 3 + 3
    assert all(parametrize.is_parametrized(m, "weight") for m in d_layers)
    g_layers = [m for m in generator.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert g_layers and all(parametrize.is_parametrized(m, "weight") for m in g_layers)
    # the conditional batch-norm gains and biases are plain per-class embeddings
    cbn = [m for m in generator.modules() if isinstance(m, nn.Embedding)]
    assert len(cbn) == 2 * 2 * len(generator.blocks)


def test_self_attention_sits_at_the_configured_resolution():
    config = SaganConfig(resolution=64, num_classes=2, g_width=2, d_width=2, attention_resolution=32)
    generator, discriminator = build_sagan(config)
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = output.shape[-1]

        return hook

    generator.attention.register_forward_hook(record("g"))
    discriminator.attention.register_forward_hook(record("d"))
    images = generator(torch.randn(2, 128), torch.tensor([0, 1]))
    discriminator(images, torch.tensor([0, 1]))
    assert seen == {"g": 32, "d": 32}
    none_g, none_d = build_sagan(SaganConfig(resolution=32, g_width=2, d_width=2, attention_resolution=0))
    assert none_g.attention is None and none_d.attention is None
    assert not any(isinstance(m, SelfAttention) for m in none_g.modules())
    with pytest.raises(ValueError, match="attention_resolution 48"):
        SaganConfig(resolution=64, attention_resolution=48)
    with pytest.raises(ValueError, match="resolution 96"):
        SaganConfig(resolution=96)


def test_hinge_losses_on_known_logits():
    real = torch.tensor([2.0, 0.5, -1.0])
    fake = torch.tensor([-2.0, 0.0, 1.0])
    # real: relu(1 - x) = 0, 0.5, 2 -> 5/6; fake: relu(1 + x) = 0, 1, 2 -> 1
    assert hinge_d_loss(real, fake).item() == pytest.approx(5 / 6 + 1)
    assert hinge_g_loss(fake).item() == pytest.approx(1 / 3)
    assert hinge_d_loss(torch.full((4,), 3.0), torch.full((4,), -3.0)).item() == 0.0
