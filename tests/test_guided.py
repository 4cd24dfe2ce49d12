"""The guided latent: projection modes, widening G's input without changing its output, gradients to M."""

from __future__ import annotations

import copy

import pytest
import torch
from torch.nn.utils import parametrize

from pipeline.errors import ParamsError
from pipeline.models.guided import GuidedGenerator, LatentGuide, widen_generator_input
from pipeline.models.sagan import Generator, SaganConfig

LATENT = 8
FEATURES = 16
CONFIG = SaganConfig(
    resolution=32, num_classes=3, latent_dim=LATENT, g_width=4, d_width=4, attention_resolution=16
)


def trained_looking_generator() -> Generator:
    """A tiny G with non-trivial BN statistics (as after pre-training)."""
    torch.manual_seed(0)
    generator = Generator(CONFIG)
    with torch.no_grad():
        for _ in range(3):
            generator(torch.randn(4, LATENT), torch.tensor([0, 1, 2, 0]))
    return generator


def inputs(batch: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return torch.randn(batch, LATENT), torch.tensor([0, 1, 2, 1])[:batch], torch.randn(batch, FEATURES)


def test_guide_modes():
    torch.manual_seed(0)
    z, _, features = inputs()
    add = LatentGuide(FEATURES, LATENT, "add").eval()
    other_z = torch.randn_like(z)
    with torch.no_grad():
        assert torch.allclose(add(z, features) - z, add(other_z, features) - other_z, atol=1e-6)
        assert not torch.allclose(add(z, features), add(z, features + 1.0))
    concat = LatentGuide(FEATURES, LATENT, "concat").eval()
    out = concat(z, features)
    assert out.shape == (4, 2 * LATENT)
    assert torch.equal(out[:, :LATENT], z)
    assert concat.extra_inputs == LATENT and add.extra_inputs == 0
    assert concat.config == {"feature_channels": FEATURES, "latent_dim": LATENT, "mode": "concat"}
    assert parametrize.is_parametrized(add.project, "weight")


def test_guide_errors():
    with pytest.raises(ParamsError, match=r"mgm\.guide: unknown guide mode 'mul'"):
        LatentGuide(FEATURES, LATENT, "mul")
    guide = LatentGuide(FEATURES, LATENT)
    with pytest.raises(ValueError, match=r"features have shape \(4, 12\), expected 4 x 16"):
        guide(torch.randn(4, LATENT), torch.randn(4, 12))
    with pytest.raises(ValueError, match=r"z has shape \(4, 5\), expected B x 8"):
        guide(torch.randn(4, 5), torch.randn(4, FEATURES))


@pytest.mark.parametrize("training", [False, True])
def test_widened_generator_draws_the_same_images(training):
    generator = trained_looking_generator()
    wide = widen_generator_input(copy.deepcopy(generator), 5)
    generator.train(training)
    wide.train(training)
    original = generator.linear.parametrizations.weight.original
    widened = wide.linear.parametrizations.weight.original
    assert widened.shape == (original.shape[0], LATENT + 5)
    assert torch.equal(widened[:, :LATENT], original) and not widened[:, LATENT:].any()
    assert parametrize.is_parametrized(wide.linear, "weight")
    z, label, _ = inputs()
    with torch.no_grad():
        expected = generator(z, label)
        got = wide(torch.cat([z, torch.randn(4, 5)], dim=1), label)
    assert torch.allclose(got, expected, atol=1e-5)


def test_widening_leaves_the_callers_rng_alone():
    generator = trained_looking_generator()
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    widen_generator_input(generator, 4)
    assert torch.equal(torch.rand(3), expected)


def test_widening_a_frozen_eval_copy_keeps_it_frozen_and_in_eval_mode():
    ema = trained_looking_generator().eval().requires_grad_(False)
    widen_generator_input(ema, 4)
    assert not ema.linear.training
    assert not any(p.requires_grad for p in ema.parameters())
    assert widen_generator_input(ema, 0) is ema and ema.linear.in_features == LATENT + 4


def test_concat_guided_generator_starts_as_the_pretrained_generator():
    generator = trained_looking_generator()
    guided = GuidedGenerator(copy.deepcopy(generator), LatentGuide(FEATURES, LATENT, "concat"))
    assert guided.generator.linear.in_features == 2 * LATENT
    assert guided.config == CONFIG
    generator.eval()
    guided.eval()
    z, label, features = inputs()
    with torch.no_grad():
        assert torch.allclose(guided(z, label, features), generator(z, label), atol=1e-5)


def test_add_guided_generator_follows_the_features():
    guided = GuidedGenerator(trained_looking_generator(), LatentGuide(FEATURES, LATENT, "add")).eval()
    z, label, features = inputs()
    with torch.no_grad():
        first = guided(z, label, features)
        assert torch.equal(guided(z, label, features), first)
        assert (guided(z, label, torch.randn_like(features)) - first).abs().max() > 1e-3


def test_generator_gradient_reaches_the_features():
    guided = GuidedGenerator(trained_looking_generator(), LatentGuide(FEATURES, LATENT, "add"))
    z, label, features = inputs()
    features.requires_grad_(True)
    guided(z, label, features).square().mean().backward()
    assert features.grad is not None and (features.grad.abs().sum(dim=1) > 0).all()
    assert guided.guide.project.parametrizations.weight.original.grad.abs().sum() > 0


def test_concat_features_get_gradient_once_the_new_columns_move():
    guided = GuidedGenerator(trained_looking_generator(), LatentGuide(FEATURES, LATENT, "concat"))
    z, label, features = inputs()
    features.requires_grad_(True)
    guided(z, label, features).square().mean().backward()
    assert not features.grad.any()  # the new columns start at zero
    weight = guided.generator.linear.parametrizations.weight.original
    assert weight.grad[:, LATENT:].abs().sum() > 0
    torch.optim.SGD(guided.parameters(), lr=0.1).step()
    features.grad = None
    guided(z, label, features).square().mean().backward()
    assert (features.grad.abs().sum(dim=1) > 0).all()


def test_state_dict_of_a_concat_guided_generator_loads_into_a_rebuilt_one():
    guided = GuidedGenerator(trained_looking_generator(), LatentGuide(FEATURES, LATENT, "concat"))
    rebuilt = GuidedGenerator(Generator(CONFIG), LatentGuide(FEATURES, LATENT, "concat"))
    rebuilt.load_state_dict(guided.state_dict())
    guided.eval()
    rebuilt.eval()
    z, label, features = inputs()
    with torch.no_grad():
        assert torch.equal(rebuilt(z, label, features), guided(z, label, features))
    with pytest.raises(ValueError, match=r"guide latent_dim 4 != generator latent_dim 8"):
        GuidedGenerator(Generator(CONFIG), LatentGuide(FEATURES, 4))
    with pytest.raises(ValueError, match=r"first layer takes 16 inputs, the guide gives 8"):
        GuidedGenerator(guided.generator, LatentGuide(FEATURES, LATENT, "add"))
