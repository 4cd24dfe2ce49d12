"""Dense task losses over valid pixels, and their combination across tasks.

Each task loss returns a :class:`LossSum`: the *sum* of per-pixel losses and the number of pixels
it covers. The training loss of a batch is ``total / count``; evaluation adds the sums and counts
of every batch, so the mean test loss per task (Taskonomy style) is exact over the split rather
than a mean of batch means.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.data.schema import IGNORE_LABEL

if TYPE_CHECKING:
    from pipeline.models.heads import Decoded

PseudoLabel = Callable[[Tensor], Mapping[str, Tensor]]

NormalLoss = Literal["l1", "cosine"]
Weighting = Literal["fixed", "uncertainty"]


class LossSum(NamedTuple):
    """Sum of per-pixel losses and the number of (valid) pixels summed."""

    total: Tensor
    count: Tensor

    def mean(self) -> Tensor:
        """The mean per-pixel loss (0 when no pixel is valid, with a gradient path kept)."""
        return self.total / self.count.clamp(min=1)


def seg_loss(logits: Tensor, batch: Mapping[str, Tensor], normal_loss: NormalLoss = "l1") -> LossSum:
    """Cross-entropy over pixels whose label is not ``IGNORE_LABEL`` (255)."""
    target = batch["seg"]
    total = F.cross_entropy(logits.float(), target, ignore_index=IGNORE_LABEL, reduction="sum")
    return LossSum(total, (target != IGNORE_LABEL).sum())


def depth_loss(pred: Tensor, batch: Mapping[str, Tensor], normal_loss: NormalLoss = "l1") -> LossSum:
    """L1 between predicted and true depth (metres) over pixels with valid depth."""
    valid = batch["depth_valid"]
    error = (pred.float() - batch["depth"]).abs()
    return LossSum(error[valid].sum(), valid.sum())


def normal_valid_mask(normal: Tensor) -> Tensor:
    """B x H x W mask of pixels with a ground-truth normal (invalid normals are all zero)."""
    return normal.ne(0).any(dim=1)


def normal_loss(pred: Tensor, batch: Mapping[str, Tensor], normal_loss: NormalLoss = "l1") -> LossSum:
    """Normals over valid pixels: ``l1`` = mean absolute difference of the three components of
    unit vectors (the authors' code), ``cosine`` = ``1 - cos`` of the angle between them."""
    target = batch["normal"]
    valid = normal_valid_mask(target)
    pred = F.normalize(pred.float(), dim=1)
    if normal_loss == "cosine":
        per_pixel = 1.0 - (pred * target).sum(dim=1)
    else:
        per_pixel = (pred - target).abs().mean(dim=1)
    return LossSum(per_pixel[valid].sum(), valid.sum())


def map_loss(task: str) -> Callable[..., LossSum]:
    """The L1 loss of map task ``task`` (Taskonomy's loss for edges, reshading and curvature): the
    absolute error averaged over channels, summed over the pixels ``<task>_valid`` marks."""

    def loss(pred: Tensor, batch: Mapping[str, Tensor], normal_loss: NormalLoss = "l1") -> LossSum:
        valid = batch[f"{task}_valid"][:, 0]
        per_pixel = (pred.float() - batch[task]).abs().mean(dim=1)
        return LossSum(per_pixel[valid].sum(), valid.sum())

    loss.__name__ = f"{task}_loss"
    return loss


class MultiTaskLoss(nn.Module):
    """Weighted sum of task losses: ``fixed`` weights, or ``uncertainty`` weighting (Kendall et al.
    2018) with a learned log-variance ``s_t`` per task: ``sum_t w_t (exp(-s_t) L_t + s_t / 2)``.
    The log-variances are parameters of this module: give them to the optimizer and checkpoint it.
    ``pseudo_labels`` (task -> :attr:`TaskSpec.pseudo_label`) serve the auxiliary terms scored
    against a prediction (:meth:`auxiliary_losses`); those cover a batch's weak rows (``labelled``
    False) only with ``weak_consistency``.
    """

    def __init__(
        self,
        tasks: Sequence[str],
        losses: Mapping[str, object],
        weights: Mapping[str, float] | None = None,
        weighting: Weighting = "fixed",
        normal_kind: NormalLoss = "l1",
        pseudo_labels: Mapping[str, PseudoLabel] | None = None,
        weak_consistency: bool = False,
    ) -> None:
        super().__init__()
        self.weak_consistency = weak_consistency
        self.tasks = list(tasks)
        self.losses = dict(losses)
        self.pseudo_labels = dict(pseudo_labels or {})
        self.weights = {task: float((weights or {}).get(task, 1.0)) for task in self.tasks}
        self.weighting = weighting
        self.normal_kind: NormalLoss = normal_kind
        if weighting == "uncertainty":
            self.log_vars = nn.Parameter(torch.zeros(len(self.tasks)))
        else:
            self.register_parameter("log_vars", None)

    def task_losses(self, outputs: Mapping[str, Tensor], batch: Mapping[str, Tensor]) -> dict[str, LossSum]:
        """Per-task loss sums and pixel counts."""
        return {task: self.losses[task](outputs[task], batch, self.normal_kind) for task in self.tasks}

    def auxiliary_losses(self, decoded: Decoded, batch: Mapping[str, Tensor]) -> dict[str, LossSum]:
        """Loss sums of the head's auxiliary outputs: MTI-Net's per-scale predictions against the
        labels, XTasC-Net's transfers against the labels or against the detached final prediction of
        their target task (turned into labels by ``pseudo_labels``)."""
        sums = {}
        labelled = batch.get("labelled")
        rows = None if self.weak_consistency or labelled is None or bool(labelled.all()) else labelled
        for aux in decoded.auxiliary:
            if aux.supervision == "label":
                sums[aux.name] = self.losses[aux.task](aux.output, batch, self.normal_kind)
                continue
            output, direct = aux.output, decoded.outputs[aux.task].detach()
            if rows is not None:
                output, direct = output[rows], direct[rows]
            if len(output) == 0:  # no labelled row: a zero term that keeps the graph
                sums[aux.name] = LossSum(aux.output.sum() * 0.0, torch.zeros((), device=aux.output.device))
                continue
            target = self.pseudo_labels[aux.task](direct)
            sums[aux.name] = self.losses[aux.task](output, target, self.normal_kind)
        return sums

    def consistency_only(self, decoded: Decoded) -> Decoded:
        """``decoded`` with only the auxiliary terms scored against a prediction (they need no label)."""
        kept = [aux for aux in decoded.auxiliary if aux.supervision == "prediction"]
        return type(decoded)(decoded.outputs, kept)

    def combine_auxiliary(self, decoded: Decoded, sums: Mapping[str, LossSum]) -> Tensor:
        """``sum_aux weight_aux * w_task * mean_aux``: the auxiliary terms, with the fixed task
        weights (as MTI-Net's loss weights each scale's prediction like the final one)."""
        total = torch.zeros((), device=next(iter(decoded.outputs.values())).device)
        for aux in decoded.auxiliary:
            total = total + aux.weight * self.weights[aux.task] * sums[aux.name].mean()
        return total

    def combine(self, means: Mapping[str, Tensor]) -> Tensor:
        """The scalar to back-propagate from per-task mean losses."""
        total = torch.zeros((), device=next(iter(means.values())).device)
        for index, task in enumerate(self.tasks):
            term = means[task]
            if self.log_vars is not None:
                term = torch.exp(-self.log_vars[index]) * term + 0.5 * self.log_vars[index]
            total = total + self.weights[task] * term
        return total
