"""Self-supervised parts: NT-Xent, per-sample augmentations, SimCLR and reconstruction heads and losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from pipeline.config import SslParams
from pipeline.errors import ParamsError
from pipeline.models.multitask import build_multitask_net
from pipeline.models.ssl import ReconstructionHead, SimCLRHead
from pipeline.train.ssl import (
    BatchAugment,
    blur_kernel_size,
    build_ssl_head,
    build_views,
    nt_xent,
    ssl_loss,
)


def tiny_m():
    return build_multitask_net(
        ["seg", "depth"], 5, encoder="halfwidth34", encoder_widths=[8, 8, 16, 16], decoder_channels=[8] * 5
    )


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ----------------------------------------------------------------------------- NT-Xent


def test_nt_xent_matches_the_formula_on_two_samples():
    # views: a1=(1,0), b1=(0,1); a2=(3,4) -> (0.6,0.8), b2=(0,2) -> (0,1). Anchors [a1, b1, a2, b2].
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    z2 = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    t = 0.5
    e = math.exp
    # cosines: a1.a2=0.6, a1.b1=0, a1.b2=0, b1.a2=0.8, b1.b2=1, a2.b2=0.8
    loss_a1 = -math.log(e(0.6 / t) / (e(0.0 / t) + e(0.6 / t) + e(0.0 / t)))
    loss_b1 = -math.log(e(1.0 / t) / (e(0.0 / t) + e(0.8 / t) + e(1.0 / t)))
    loss_a2 = -math.log(e(0.6 / t) / (e(0.6 / t) + e(0.8 / t) + e(0.8 / t)))
    loss_b2 = -math.log(e(1.0 / t) / (e(0.0 / t) + e(0.8 / t) + e(1.0 / t)))
    expected = (loss_a1 + loss_b1 + loss_a2 + loss_b2) / 4
    # by hand: (0.4715 + 0.5910 + 1.3822 + 0.5910) / 4
    assert expected == pytest.approx(0.7589, abs=1e-4)
    assert float(nt_xent(z1, z2, temperature=t)) == pytest.approx(expected, rel=1e-6)


def test_nt_xent_prefers_matching_views_is_symmetric_and_has_gradients():
    torch.manual_seed(0)
    z = torch.randn(8, 16)
    same = nt_xent(z, z.clone())
    unrelated = nt_xent(z, torch.randn(8, 16))
    assert float(same) < float(unrelated)
    z1 = torch.randn(8, 16, requires_grad=True)
    z2 = torch.randn(8, 16, requires_grad=True)
    loss = nt_xent(z1, z2, 0.2)
    assert torch.allclose(loss, nt_xent(z2, z1, 0.2), atol=1e-6)
    loss.backward()
    assert z1.grad.abs().sum() > 0 and z2.grad.abs().sum() > 0


def test_nt_xent_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(4, 8\) and \(3, 8\)"):
        nt_xent(torch.randn(4, 8), torch.randn(3, 8))
    with pytest.raises(ValueError, match=r"temperature must be positive"):
        nt_xent(torch.randn(4, 8), torch.randn(4, 8), 0.0)


# ----------------------------------------------------------------------------- augmentations


def test_augment_shape_range_and_randomness():
    torch.manual_seed(0)
    images = torch.rand(4, 3, 32, 32)
    augment = BatchAugment(32, generator=seeded(1))
    first, second = augment(images), augment(images)
    assert first.shape == second.shape == images.shape
    assert first.dtype == torch.float32
    assert float(first.min()) >= 0.0 and float(first.max()) <= 1.0
    assert not torch.allclose(first, second)
    assert BatchAugment(16, generator=seeded(1))(images).shape == (4, 3, 16, 16)


def test_augment_same_seed_same_views_and_global_rng_untouched():
    images = torch.rand(4, 3, 32, 32)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = BatchAugment(32, generator=seeded(7))(images)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's stream did not move
    second = BatchAugment(32, generator=seeded(7))(images)
    assert torch.equal(first, second)
    assert not torch.equal(first, BatchAugment(32, generator=seeded(8))(images))


def test_augment_draws_parameters_per_sample():
    image = torch.rand(1, 3, 32, 32)
    views = BatchAugment(32, generator=seeded(0))(image.expand(6, -1, -1, -1).contiguous())
    distinct = {tuple(view.flatten()[:64].tolist()) for view in views}
    assert len(distinct) == 6


def test_augment_is_differentiable_even_with_every_step_applied():
    images = torch.rand(4, 3, 32, 32, requires_grad=True)
    augment = BatchAugment(32, jitter_p=1.0, gray_p=0.0, blur_p=1.0, generator=seeded(3))
    out = augment(images)
    (out * torch.rand_like(out)).sum().backward()
    assert images.grad is not None and torch.isfinite(images.grad).all()
    assert (images.grad.flatten(1).abs().sum(dim=1) > 0).all()


def test_views_follow_the_ssl_params():
    """With the full-area crop and every colour step off, a view is its image, flipped or not."""
    images = torch.rand(8, 3, 32, 32)
    plain = SslParams(crop_scale=(1.0, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0)
    views = build_views(plain, 32, generator=seeded(2))(images)
    for view, image in zip(views, images, strict=True):
        assert torch.allclose(view, image, atol=1e-5) or torch.allclose(view, image.flip(-1), atol=1e-5)
    strong = SslParams(crop_scale=(0.2, 1.0), jitter=(0.8, 0.8, 0.8, 0.2))
    differs = build_views(strong, 32, generator=seeded(2))(images)
    assert (differs - images).abs().mean() > 0.05


def test_views_params_reject_bad_ranges():
    with pytest.raises(ValidationError, match=r"(?s)crop_scale.*0 < min <= max <= 1"):
        SslParams(crop_scale=(0.6, 0.4))
    with pytest.raises(ValidationError, match=r"(?s)jitter.*hue <= 0.5"):
        SslParams(jitter=(0.4, 0.4, 0.4, 0.7))
    with pytest.raises(ValidationError, match=r"blur_p"):
        SslParams(blur_p=1.5)


def test_blur_kernel_and_input_checks():
    assert [blur_kernel_size(s) for s in (32, 64, 128, 256)] == [3, 7, 13, 27]
    with pytest.raises(ValueError, match=r"B x 3 x H x W.*torch.uint8"):
        BatchAugment(32)(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


# ----------------------------------------------------------------------------- heads and losses


def test_heads_shapes_and_ranges():
    linear = SimCLRHead(16, dim=8)
    assert [type(m) for m in linear.modules() if isinstance(m, nn.Linear)] == [nn.Linear]
    assert linear(torch.randn(4, 16)).shape == (4, 8)
    mlp = SimCLRHead(16, dim=8, hidden=32)
    assert len([m for m in mlp.modules() if isinstance(m, nn.Linear)]) == 2
    assert mlp(torch.randn(4, 16)).shape == (4, 8)
    for size, feature_size in [(32, 1), (64, 2), (48, 2)]:
        with torch.no_grad():
            out = ReconstructionHead(16, size, channels=(8, 4))(
                torch.randn(2, 16, feature_size, feature_size)
            )
        assert out.shape == (2, 3, size, size)
        assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0


def test_build_ssl_head_kinds():
    assert isinstance(build_ssl_head("simclr", 16, 32, 8), SimCLRHead)
    recon = build_ssl_head("recon", 16, 32, 8)
    assert isinstance(recon, ReconstructionHead) and recon.out_size == 32
    assert build_ssl_head("none", 16, 32, 8) is None
    with pytest.raises(ParamsError, match=r"mgm\.ssl: unknown self-supervised loss 'byol'"):
        build_ssl_head("byol", 16, 32, 8)
    with pytest.raises(ParamsError, match=r"mix\.ssl: unknown"):
        build_ssl_head("byol", 16, 32, 8, param="mix.ssl")


def test_simclr_loss_trains_encoder_and_head_and_is_reproducible():
    torch.manual_seed(0)
    net = tiny_m()
    head = build_ssl_head("simclr", net.feature_channels, 32, 8)
    images = torch.rand(4, 3, 32, 32)
    loss = ssl_loss("simclr", net, head, images, BatchAugment(32, generator=seeded(5)), 0.5)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert loss.item() > 0
    loss.backward()
    assert sum(float(p.grad.abs().sum()) for p in net.encoder.parameters() if p.grad is not None) > 0
    assert all(p.grad is not None for p in head.parameters())
    assert all(p.grad is None for p in net.decoders.parameters())
    net.eval()
    with torch.no_grad():
        again = [
            ssl_loss("simclr", net, head, images, BatchAugment(32, generator=seeded(5)), 0.5)
            for _ in range(2)
        ]
    assert torch.equal(again[0], again[1])


def test_reconstruction_loss_is_mse_and_learns():
    torch.manual_seed(0)
    net = tiny_m()
    head = build_ssl_head("recon", net.feature_channels, 32, 8, channels=(8, 8))
    images = torch.rand(4, 3, 32, 32)
    augment = BatchAugment(32, generator=seeded(0))
    net.eval()
    head.eval()
    with torch.no_grad():
        expected = F.mse_loss(head(net.encoder(images)), images)
        assert torch.equal(ssl_loss("recon", net, head, images, augment, 0.5), expected)
    net.train()
    head.train()
    optimizer = torch.optim.Adam([*net.encoder.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for _ in range(8):
        optimizer.zero_grad()
        loss = ssl_loss("recon", net, head, images, augment, 0.5)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    wrong_size = build_ssl_head("recon", net.feature_channels, 64, 8)
    with pytest.raises(ValueError, match=r"reconstruction \(4, 3, 64, 64\) does not match"):
        ssl_loss("recon", net, wrong_size, images, augment, 0.5)


def test_none_and_bad_kinds():
    net = tiny_m()
    images = torch.rand(2, 3, 32, 32)
    augment = BatchAugment(32)
    zero = ssl_loss("none", net, None, images, augment, 0.5)
    assert zero.shape == () and float(zero) == 0.0 and zero.grad_fn is None
    with pytest.raises(ParamsError, match=r"mgm\.ssl: unknown self-supervised loss 'rotation'"):
        ssl_loss("rotation", net, None, images, augment, 0.5)
    with pytest.raises(ValueError, match=r"mgm\.ssl=simclr needs a head"):
        ssl_loss("simclr", net, None, images, augment, 0.5)
