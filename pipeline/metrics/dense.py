"""Dense multi-task metrics accumulated exactly over a whole split, and the Δm summary.

Every meter keeps only sums (a confusion matrix, error sums, pixel counts, an angle histogram), so
adding batches one by one gives the same result as computing on the whole split at once, and
meters of several DDP ranks combine by adding their state tensors (:meth:`Meter.all_reduce`).

Predictions are in target space: class ids for segmentation, metres for depth, (not necessarily
unit) vectors for normals. Invalid pixels (label 255, depth 0, all-zero normal) are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.data.schema import IGNORE_LABEL

NORMAL_THRESHOLDS = (11.25, 22.5, 30.0)
ANGLE_BIN_DEGREES = 0.01
"""Bin width of the angle histogram: the median angular error is exact to within this."""


class Meter:
    """Accumulates sums in ``self.state`` (a dict of float64/int64 tensors on the CPU)."""

    state: dict[str, Tensor]

    def all_reduce(self) -> None:
        """Sum the state over the ranks of an initialised process group (no-op otherwise)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return
        for name, value in self.state.items():
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            self.state[name] = value

    def compute(self) -> dict[str, float]:
        raise NotImplementedError


class SegMeter(Meter):
    """Confusion matrix -> mIoU over the classes present in the ground truth, and pixel accuracy."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.state = {"confusion": torch.zeros(num_classes, num_classes, dtype=torch.float64)}

    def update(self, pred: Tensor, target: Tensor) -> None:
        """``pred`` and ``target``: class ids of the same shape; target 255 is ignored."""
        pred, target = pred.detach().reshape(-1).cpu(), target.detach().reshape(-1).cpu()
        keep = target != IGNORE_LABEL
        pred, target = pred[keep].long(), target[keep].long()
        if target.numel() and int(target.max()) >= self.num_classes:
            raise ValueError(f"segmentation label {int(target.max())} >= num_classes {self.num_classes}")
        pred = pred.clamp(0, self.num_classes - 1)
        index = target * self.num_classes + pred
        counts = torch.bincount(index, minlength=self.num_classes**2).reshape(self.num_classes, -1)
        self.state["confusion"] += counts.double()

    @property
    def confusion(self) -> Tensor:
        """Rows: true class, columns: predicted class."""
        return self.state["confusion"]

    def compute(self) -> dict[str, float]:
        confusion = self.confusion
        true_counts, pred_counts = confusion.sum(1), confusion.sum(0)
        hits = confusion.diagonal()
        present = true_counts > 0
        iou = hits / (true_counts + pred_counts - hits).clamp(min=1)
        total = confusion.sum()
        return {
            "miou": float(iou[present].mean()) if present.any() else math.nan,
            "pixel_acc": float(hits.sum() / total) if total > 0 else math.nan,
        }


class DepthMeter(Meter):
    """Depth errors over valid pixels: mean absolute (MAE), absolute relative, RMSE, δ < 1.25."""

    def __init__(self) -> None:
        self.state = {
            name: torch.zeros((), dtype=torch.float64) for name in ("abs", "rel", "sq", "delta", "n")
        }

    def update(self, pred: Tensor, target: Tensor, valid: Tensor | None = None) -> None:
        """``pred``/``target`` in metres (same shape); ``valid`` defaults to ``target > 0``."""
        pred, target = pred.detach().double().cpu(), target.detach().double().cpu()
        valid = (target > 0) if valid is None else valid.detach().cpu().bool() & (target > 0)
        pred, target = pred[valid], target[valid]
        error = pred - target
        ratio = torch.maximum(pred.clamp(min=1e-6) / target, target / pred.clamp(min=1e-6))
        self.state["abs"] += error.abs().sum()
        self.state["rel"] += (error.abs() / target).sum()
        self.state["sq"] += error.square().sum()
        self.state["delta"] += (ratio < 1.25).sum()
        self.state["n"] += valid.sum()

    def compute(self) -> dict[str, float]:
        n = float(self.state["n"])
        if n == 0:
            return {"mae": math.nan, "abs_rel": math.nan, "rmse": math.nan, "delta1": math.nan}
        return {
            "mae": float(self.state["abs"]) / n,
            "abs_rel": float(self.state["rel"]) / n,
            "rmse": math.sqrt(float(self.state["sq"]) / n),
            "delta1": float(self.state["delta"]) / n,
        }


EDGE_THRESHOLD = 0.5
"""Edge maps: a pixel counts as an edge where the value exceeds this (for precision, recall, F1)."""


class MapMeter(Meter):
    """A per-pixel regression map (edges, reshading, curvature): mean absolute error (``mae``, the
    Taskonomy L1 test loss) and RMSE over pixels and channels; with ``edge_threshold``, also the
    pixel-wise ``precision``, ``recall`` and ``f1`` of ``value > edge_threshold`` (1 when a split
    has no edge and none is predicted)."""

    def __init__(self, edge_threshold: float | None = None) -> None:
        self.edge_threshold = edge_threshold
        self.state = {
            name: torch.zeros((), dtype=torch.float64) for name in ("abs", "sq", "n", "tp", "fp", "fn")
        }

    def update(self, pred: Tensor, target: Tensor) -> None:
        """``pred``/``target``: B x C x H x W in the target's units."""
        pred, target = pred.detach().double().cpu(), target.detach().double().cpu()
        error = pred - target
        self.state["abs"] += error.abs().sum()
        self.state["sq"] += error.square().sum()
        self.state["n"] += error.numel()
        if self.edge_threshold is not None:
            predicted, true = pred > self.edge_threshold, target > self.edge_threshold
            self.state["tp"] += (predicted & true).sum()
            self.state["fp"] += (predicted & ~true).sum()
            self.state["fn"] += (~predicted & true).sum()

    def compute(self) -> dict[str, float]:
        n = float(self.state["n"])
        result = {"mae": float(self.state["abs"]) / n if n else math.nan}
        result["rmse"] = math.sqrt(float(self.state["sq"]) / n) if n else math.nan
        if self.edge_threshold is not None:
            tp, fp, fn = (float(self.state[name]) for name in ("tp", "fp", "fn"))
            result["precision"] = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
            result["recall"] = tp / (tp + fn) if tp + fn else 1.0
            both = result["precision"] + result["recall"]
            result["f1"] = 2 * result["precision"] * result["recall"] / both if both else 0.0
        return result


def angular_error_degrees(pred: Tensor, target: Tensor) -> Tensor:
    """Angle in degrees between vectors along dim 1 (``pred`` is normalised first)."""
    pred = torch.nn.functional.normalize(pred.double(), dim=1)
    target = torch.nn.functional.normalize(target.double(), dim=1)
    cosine = (pred * target).sum(dim=1).clamp(-1.0, 1.0)
    return torch.rad2deg(torch.acos(cosine))


class NormalMeter(Meter):
    """Angular error of normals in degrees: mean, median, and % of pixels within 11.25/22.5/30; and
    ``l1``, the mean absolute error of the normals encoded in [0, 1] (``(n + 1) / 2``, per channel),
    the form of the MGM paper's normals number ("mAD", the authors' L1 loss).

    The mean and the threshold fractions are exact. The median comes from a histogram of
    ``ANGLE_BIN_DEGREES`` (0.01 degree) bins, so it is within 0.01 degree of the exact median
    (the mean of the two middle values for an even count) while memory stays constant however
    large the split (an exact median would need every angle of the split).
    """

    def __init__(self) -> None:
        self.bins = round(180.0 / ANGLE_BIN_DEGREES)
        self.state = {
            "sum": torch.zeros((), dtype=torch.float64),
            "n": torch.zeros((), dtype=torch.float64),
            "within": torch.zeros(len(NORMAL_THRESHOLDS), dtype=torch.float64),
            "histogram": torch.zeros(self.bins, dtype=torch.float64),
            "l1_sum": torch.zeros((), dtype=torch.float64),
        }

    def update(self, pred: Tensor, target: Tensor) -> None:
        """``pred``/``target``: B x 3 x H x W; pixels whose target is all zero are skipped."""
        pred, target = pred.detach().cpu(), target.detach().cpu()
        valid = target.ne(0).any(dim=1)
        angles = angular_error_degrees(pred, target)[valid]
        unit = F.normalize(pred.double(), dim=1)
        self.state["l1_sum"] += ((unit - target.double()).abs().mean(dim=1) / 2)[valid].sum()
        self.state["sum"] += angles.sum()
        self.state["n"] += angles.numel()
        for index, threshold in enumerate(NORMAL_THRESHOLDS):
            self.state["within"][index] += (angles < threshold).sum()
        bins = (angles / ANGLE_BIN_DEGREES).long().clamp(0, self.bins - 1)
        self.state["histogram"] += torch.bincount(bins, minlength=self.bins).double()

    def median(self) -> float:
        """Mean of the two middle order statistics (one when the count is odd), each placed at the
        centre of its share of its histogram bin: within ``ANGLE_BIN_DEGREES`` of the exact median."""
        histogram = self.state["histogram"]
        n = int(histogram.sum())
        if n == 0:
            return math.nan
        cumulative = histogram.cumsum(0)

        def order_statistic(rank: int) -> float:  # 1-based
            index = int(torch.searchsorted(cumulative, torch.tensor(float(rank), dtype=torch.float64)))
            before = float(cumulative[index - 1]) if index > 0 else 0.0
            return (index + (rank - before - 0.5) / float(histogram[index])) * ANGLE_BIN_DEGREES

        return 0.5 * (order_statistic((n + 1) // 2) + order_statistic(n // 2 + 1))

    def compute(self) -> dict[str, float]:
        n = float(self.state["n"])
        if n == 0:
            return {"mean_angle": math.nan, "median_angle": math.nan, "l1": math.nan} | {
                _within_name(t): math.nan for t in NORMAL_THRESHOLDS
            }
        result = {"mean_angle": float(self.state["sum"]) / n, "median_angle": self.median()}
        result["l1"] = float(self.state["l1_sum"]) / n
        for index, threshold in enumerate(NORMAL_THRESHOLDS):
            result[_within_name(threshold)] = 100.0 * float(self.state["within"][index]) / n
        return result


def _within_name(threshold: float) -> str:
    return f"within_{threshold:g}".replace(".", "_")


class LossMeter(Meter):
    """Mean loss per pixel over a split: the sum of loss sums over the sum of pixel counts."""

    def __init__(self) -> None:
        self.state = {
            "total": torch.zeros((), dtype=torch.float64),
            "n": torch.zeros((), dtype=torch.float64),
        }

    def update(self, total: Tensor, count: Tensor) -> None:
        self.state["total"] += float(total.detach())
        self.state["n"] += float(count.detach())

    def compute(self) -> dict[str, float]:
        n = float(self.state["n"])
        return {"loss": float(self.state["total"]) / n if n else math.nan}


def delta_m(
    metrics: Mapping[str, float], reference: Mapping[str, float], lower_is_better: Mapping[str, bool]
) -> float:
    """Multi-task performance Δm (fraction; x100 for %) of ``metrics`` against ``reference``.

    ``Δm = (1/T) Σ_t (-1)^{l_t} (M_t - M_ref,t) / M_ref,t`` with ``l_t = 1`` where lower is better,
    over the keys of ``lower_is_better``; positive means better than the reference.
    """
    if not lower_is_better:
        raise ValueError("delta_m needs at least one metric")
    terms = []
    for name, lower in lower_is_better.items():
        if name not in metrics or name not in reference:
            raise KeyError(f"delta_m: metric {name!r} is missing from the metrics or the reference")
        ref = float(reference[name])
        if ref == 0:
            raise ValueError(f"delta_m: reference value of {name!r} is 0")
        sign = -1.0 if lower else 1.0
        terms.append(sign * (float(metrics[name]) - ref) / ref)
    return sum(terms) / len(terms)


def flatten_metrics(nested: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """``{"seg": {"miou": x}}`` -> ``{"seg/miou": x}``."""
    return {f"{task}/{name}": value for task, values in nested.items() for name, value in values.items()}
