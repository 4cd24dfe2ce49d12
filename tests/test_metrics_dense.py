"""Dense metrics against hand-computed cases; exact accumulation over batches; Δm."""

from __future__ import annotations

import math

import pytest
import torch

from pipeline.metrics.dense import (
    ANGLE_BIN_DEGREES,
    DepthMeter,
    LossMeter,
    NormalMeter,
    SegMeter,
    angular_error_degrees,
    delta_m,
)


def test_known_confusion_matrix_gives_known_miou_and_accuracy():
    # true:  0 0 0 0 1 1 2 2 255 ; pred: 0 0 1 3 1 1 2 0 2
    target = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 255])
    pred = torch.tensor([0, 0, 1, 3, 1, 1, 2, 0, 2])
    meter = SegMeter(num_classes=5)
    meter.update(pred, target)
    assert meter.confusion[0].tolist() == [2, 1, 0, 1, 0]
    assert meter.confusion.sum() == 8  # the ignored pixel is not counted
    # IoU: class 0: 2/(4+3-2)=0.4, class 1: 2/(2+3-2)=2/3, class 2: 1/(2+1-1)=0.5
    # class 3 is predicted but absent from the ground truth, class 4 absent: neither is averaged
    result = meter.compute()
    assert result["miou"] == pytest.approx((0.4 + 2 / 3 + 0.5) / 3)
    assert result["pixel_acc"] == pytest.approx(5 / 8)


def test_ignore_label_changes_nothing():
    target = torch.tensor([[0, 1], [255, 1]])
    first, second = SegMeter(3), SegMeter(3)
    first.update(torch.tensor([[0, 1], [0, 1]]), target)
    second.update(torch.tensor([[0, 1], [2, 1]]), target)
    assert torch.equal(first.confusion, second.confusion)


def test_depth_errors_by_hand_and_invalid_pixels_skipped():
    target = torch.tensor([1.0, 2.0, 4.0, 0.0])
    pred = torch.tensor([1.1, 1.0, 4.0, 7.0])
    meter = DepthMeter()
    meter.update(pred, target)
    result = meter.compute()
    assert result["mae"] == pytest.approx((0.1 + 1.0 + 0.0) / 3)
    assert result["abs_rel"] == pytest.approx((0.1 / 1 + 1.0 / 2 + 0) / 3)
    assert result["rmse"] == pytest.approx(math.sqrt((0.01 + 1.0) / 3))
    assert result["delta1"] == pytest.approx(2 / 3)  # 1.1 and 4.0 within 1.25, 1.0 vs 2.0 not


def _vectors(*vectors):
    return torch.tensor(vectors, dtype=torch.float32).T.reshape(1, 3, 1, len(vectors))


def test_known_normals_give_known_angles():
    s = math.sqrt(0.5)
    target = _vectors((1, 0, 0), (1, 0, 0), (0, 0, -1), (0, 1, 0), (0, 0, 0))
    pred = _vectors((1, 0, 0), (s, s, 0), (1, 0, 0), (0, -2, 0), (1, 0, 0))
    angles = angular_error_degrees(pred, target)[0, 0, :4]
    assert angles.tolist() == pytest.approx([0.0, 45.0, 90.0, 180.0], abs=1e-5)
    meter = NormalMeter()
    meter.update(pred, target)  # the all-zero target (invalid) is skipped
    result = meter.compute()
    assert result["mean_angle"] == pytest.approx(315 / 4)
    assert result["median_angle"] == pytest.approx((45 + 90) / 2, abs=ANGLE_BIN_DEGREES)
    assert result["within_11_25"] == pytest.approx(25.0)
    assert result["within_22_5"] == pytest.approx(25.0)
    assert result["within_30"] == pytest.approx(25.0)
    # |p - t| / 2 per channel, in the [0, 1] encoding: 0, (1 - s + s) / 6, 2 / 6, 2 / 6 (pred normalised)
    assert result["l1"] == pytest.approx((0 + 1 / 6 + 1 / 3 + 1 / 3) / 4)


def test_normal_median_within_a_bin_of_the_exact_median():
    generator = torch.Generator().manual_seed(0)
    target = torch.nn.functional.normalize(torch.randn(4, 3, 8, 8, generator=generator), dim=1)
    pred = target + 0.4 * torch.randn(4, 3, 8, 8, generator=generator)
    meter = NormalMeter()
    meter.update(pred, target)
    angles = angular_error_degrees(pred, target).reshape(-1)
    assert len(angles) == 256
    exact = float(angles.sort().values[127:129].mean())
    assert meter.compute()["median_angle"] == pytest.approx(exact, abs=ANGLE_BIN_DEGREES)
    odd = NormalMeter()  # 7 pixels: the middle value
    odd.update(pred[:1, :, :1, :7], target[:1, :, :1, :7])
    assert odd.compute()["median_angle"] == pytest.approx(float(angles[:7].median()), abs=ANGLE_BIN_DEGREES)


def _random_batch(generator, n=6, size=8, classes=4):
    seg_t = torch.randint(0, classes, (n, size, size), generator=generator)
    seg_t[:, 0] = 255
    depth_t = torch.rand(n, 1, size, size, generator=generator) * 5
    depth_t[:, :, :, 0] = 0
    normal_t = torch.nn.functional.normalize(torch.randn(n, 3, size, size, generator=generator), dim=1)
    normal_t[:, :, 1] = 0
    return {
        "seg": (torch.randint(0, classes, (n, size, size), generator=generator), seg_t),
        "depth": (torch.rand(n, 1, size, size, generator=generator) * 5 + 0.1, depth_t),
        "normal": (torch.randn(n, 3, size, size, generator=generator), normal_t),
    }


def test_batchwise_accumulation_equals_whole_split():
    data = _random_batch(torch.Generator().manual_seed(1))
    meters = {"seg": lambda: SegMeter(4), "depth": DepthMeter, "normal": NormalMeter}
    for task, make in meters.items():
        whole, batched = make(), make()
        pred, target = data[task]
        whole.update(pred, target)
        for start in range(0, 6, 4):  # unequal batches of 4 and 2
            batched.update(pred[start : start + 4], target[start : start + 4])
        for name, value in whole.compute().items():
            assert batched.compute()[name] == pytest.approx(value, rel=1e-12), (task, name)


def test_loss_meter_is_the_pixel_weighted_split_mean():
    meter = LossMeter()
    meter.update(torch.tensor(10.0), torch.tensor(10))  # batch mean 1.0 over 10 pixels
    meter.update(torch.tensor(6.0), torch.tensor(2))  # batch mean 3.0 over 2 pixels
    assert meter.compute()["loss"] == pytest.approx(16 / 12)  # not (1 + 3) / 2


def test_delta_m_by_hand():
    reference = {"seg/miou": 0.5, "depth/mae": 1.0, "normal/mean_angle": 30.0}
    metrics = {"seg/miou": 0.55, "depth/mae": 0.8, "normal/mean_angle": 33.0}
    lower = {"seg/miou": False, "depth/mae": True, "normal/mean_angle": True}
    assert delta_m(metrics, reference, lower) == pytest.approx((0.1 + 0.2 - 0.1) / 3)
    assert delta_m(reference, reference, lower) == 0.0
    with pytest.raises(KeyError, match="depth/mae"):
        delta_m({"seg/miou": 0.5}, reference, lower)
