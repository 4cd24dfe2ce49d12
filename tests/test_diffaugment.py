"""DiffAugment: shapes, gradients, per-transform behaviour, determinism under a seed."""

from __future__ import annotations

import pytest
import torch

from pipeline.train.gan.diffaugment import color, cutout, diff_augment, translation


def test_policy_keeps_shape_and_passes_gradients():
    x = torch.rand(3, 3, 16, 16, requires_grad=True)
    torch.manual_seed(0)
    out = diff_augment(x * 2 - 1, ["color", "translation", "cutout"])
    assert out.shape == x.shape
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_same_seed_same_augmentation_other_seed_differs():
    x = torch.rand(4, 3, 16, 16)
    torch.manual_seed(1)
    a = diff_augment(x, ["color", "translation", "cutout"])
    torch.manual_seed(1)
    b = diff_augment(x, ["color", "translation", "cutout"])
    torch.manual_seed(2)
    c = diff_augment(x, ["color", "translation", "cutout"])
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_translation_is_a_zero_filled_shift_of_at_most_an_eighth():
    torch.manual_seed(3)
    x = torch.rand(6, 3, 16, 16) + 1.0  # no zeros inside the image
    out = translation(x)
    for image, shifted in zip(x, out):
        matches = []
        for dy in range(-2, 3):
            for dx in range(-2, 3):
                expected = torch.zeros_like(image)
                src = image[:, max(dy, 0) : 16 + min(dy, 0), max(dx, 0) : 16 + min(dx, 0)]
                expected[:, max(-dy, 0) : 16 + min(-dy, 0), max(-dx, 0) : 16 + min(-dx, 0)] = src
                matches.append(torch.equal(shifted, expected))
        assert sum(matches) == 1


def test_cutout_zeroes_one_square_of_half_the_side():
    torch.manual_seed(4)
    x = torch.ones(8, 3, 16, 16)
    out = cutout(x)
    for image in out:
        zero = image[0] == 0
        assert torch.equal(zero, (image == 0).all(dim=0))  # same pixels in every channel
        rows, cols = zero.any(dim=1).nonzero().flatten(), zero.any(dim=0).nonzero().flatten()
        assert 0 < len(rows) <= 8 and 0 < len(cols) <= 8
        assert zero.sum() == len(rows) * len(cols)  # a rectangle (a square clipped at the border)


def test_color_changes_values_per_image():
    torch.manual_seed(5)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    out = color(x)
    assert not torch.allclose(out, x)
    assert not torch.allclose(out[0] - x[0], out[1] - x[1])


def test_unknown_policy_is_an_error():
    with pytest.raises(ValueError, match=r"unknown DiffAugment transform\(s\) \['flip'\]"):
        diff_augment(torch.zeros(1, 3, 8, 8), ["flip"])
