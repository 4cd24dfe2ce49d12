"""Dense task losses over valid pixels, and fixed / uncertainty task weighting, on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pipeline.tasks.losses import MultiTaskLoss, depth_loss, normal_loss, seg_loss


def test_seg_cross_entropy_ignores_label_255():
    logits = torch.randn(1, 3, 2, 2)
    target = torch.tensor([[[0, 1], [2, 255]]])
    result = seg_loss(logits, {"seg": target})
    assert int(result.count) == 3
    expected = sum(-F.log_softmax(logits[0, :, i // 2, i % 2], 0)[c] for i, c in enumerate([0, 1, 2]))
    assert torch.allclose(result.total, expected)
    changed = logits.clone()
    changed[0, :, 1, 1] = torch.tensor([50.0, -50.0, 3.0])
    assert torch.equal(seg_loss(changed, {"seg": target}).total, result.total)


def test_depth_l1_counts_valid_pixels_only():
    target = torch.tensor([[[[1.0, 2.0], [4.0, 0.0]]]])
    pred = torch.tensor([[[[1.5, 1.0], [4.0, 99.0]]]])
    result = depth_loss(pred, {"depth": target, "depth_valid": target > 0})
    assert int(result.count) == 3
    assert float(result.total) == pytest.approx(1.5)
    assert float(result.mean()) == pytest.approx(0.5)


def _normals(*vectors):
    return torch.tensor(vectors, dtype=torch.float32).T.reshape(1, 3, 1, len(vectors))


def test_normal_l1_and_cosine_on_known_vectors():
    target = _normals((0, 1, 0), (0, 0, -1), (0, 0, 0))
    pred = _normals((2, 0, 0), (0, 0, -3), (1, 1, 1))  # not unit: the loss normalises
    l1 = normal_loss(pred, {"normal": target}, "l1")
    assert int(l1.count) == 2
    assert float(l1.total) == pytest.approx((1 + 1 + 0) / 3 + 0.0)
    cosine = normal_loss(pred, {"normal": target}, "cosine")
    assert float(cosine.total) == pytest.approx(1.0 + 0.0)


def test_fixed_weights_and_uncertainty_weighting():
    means = {"seg": torch.tensor(2.0), "depth": torch.tensor(0.5)}
    fixed = MultiTaskLoss(["seg", "depth"], {}, weights={"depth": 4.0})
    assert float(fixed.combine(means)) == pytest.approx(2.0 + 4.0 * 0.5)
    assert list(fixed.parameters()) == []
    learned = MultiTaskLoss(["seg", "depth"], {}, weighting="uncertainty")
    with torch.no_grad():
        learned.log_vars.copy_(torch.tensor([math.log(2.0), 0.0]))
    total = learned.combine(means)
    assert float(total.detach()) == pytest.approx(2.0 / 2.0 + 0.5 * math.log(2.0) + 0.5)
    total.backward()
    # d/ds (exp(-s) L + s/2) = -exp(-s) L + 1/2
    assert learned.log_vars.grad.tolist() == pytest.approx([-1.0 + 0.5, -0.5 + 0.5])


def test_task_losses_use_the_registry_functions():
    from pipeline.tasks.registry import TASKS

    loss = MultiTaskLoss(["depth"], {"depth": TASKS["depth"].loss})
    batch = {"depth": torch.ones(1, 1, 2, 2), "depth_valid": torch.ones(1, 1, 2, 2, dtype=torch.bool)}
    sums = loss.task_losses({"depth": torch.zeros(1, 1, 2, 2)}, batch)
    assert float(sums["depth"].mean()) == pytest.approx(1.0)
