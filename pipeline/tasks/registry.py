"""The dense-task registry: each task's output channels, activation, loss, meter and metric.

A new task joins by adding one :class:`TaskSpec` to :data:`TASKS` (and, for a per-pixel map, its
storage to :data:`pipeline.data.dense_maps.MAP_TASKS`).
It sits below the models and the training loops, which both look tasks up here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from pipeline.data.dense_maps import MAP_TASKS
from pipeline.errors import ParamsError
from pipeline.metrics.dense import EDGE_THRESHOLD, DepthMeter, MapMeter, Meter, NormalMeter, SegMeter
from pipeline.tasks.losses import LossSum, depth_loss, map_loss, normal_loss, seg_loss


@dataclass(frozen=True)
class TaskSpec:
    """What the pipeline needs to know about one dense task."""

    name: str
    channels: Callable[[int], int]
    """Output channels given the number of segmentation classes."""
    activation: Callable[[Tensor], Tensor]
    """Applied to the decoder output in :meth:`MultiTaskNet.forward` (the loss sees its result)."""
    loss: Callable[..., LossSum]
    """``loss(output, batch, normal_kind) -> LossSum`` over valid pixels."""
    meter: Callable[[int], Meter]
    """A fresh metric meter given the number of classes."""
    predict: Callable[[Tensor], Tensor]
    """Network output -> prediction in target space (class ids, metres, vectors)."""
    target: str
    """The batch key of the ground truth."""
    primary_metric: str
    """The metric Δm and the paper use for this task."""
    lower_is_better: bool
    pseudo_label: Callable[[Tensor], dict[str, Tensor]]
    """Activated output (detached) -> the batch fields :attr:`loss` reads, to score another
    prediction against this one (XTasC-Net's cross-task consistency); every pixel counts as valid."""


def _identity(x: Tensor) -> Tensor:
    return x


def _unit(x: Tensor) -> Tensor:
    return F.normalize(x, dim=1)


def _argmax(x: Tensor) -> Tensor:
    return x.argmax(dim=1)


def _seg_pseudo_label(x: Tensor) -> dict[str, Tensor]:
    return {"seg": x.argmax(dim=1)}


def _depth_pseudo_label(x: Tensor) -> dict[str, Tensor]:
    return {"depth": x.float(), "depth_valid": torch.ones_like(x, dtype=torch.bool)}


def _normal_pseudo_label(x: Tensor) -> dict[str, Tensor]:
    return {"normal": F.normalize(x.float(), dim=1)}


def _map_pseudo_label(task: str) -> Callable[[Tensor], dict[str, Tensor]]:
    def pseudo_label(x: Tensor) -> dict[str, Tensor]:
        return {task: x.float(), f"{task}_valid": torch.ones_like(x[:, :1], dtype=torch.bool)}

    return pseudo_label


def _map_spec(task: str, activation: Callable[[Tensor], Tensor], edges: bool) -> TaskSpec:
    """A map task: L1 loss, ``mae`` as its primary metric (Taskonomy's mean test loss), and for edge
    maps the F-score of ``value > EDGE_THRESHOLD`` beside it."""
    channels = MAP_TASKS[task].channels
    return TaskSpec(
        name=task,
        channels=lambda num_classes: channels,
        activation=activation,
        loss=map_loss(task),
        meter=lambda num_classes: MapMeter(EDGE_THRESHOLD if edges else None),
        predict=_identity,
        target=task,
        primary_metric="mae",
        lower_is_better=True,
        pseudo_label=_map_pseudo_label(task),
    )


TASKS: dict[str, TaskSpec] = {
    "seg": TaskSpec(
        name="seg",
        channels=lambda num_classes: num_classes,
        activation=_identity,
        loss=seg_loss,
        meter=SegMeter,
        predict=_argmax,
        target="seg",
        primary_metric="miou",
        lower_is_better=False,
        pseudo_label=_seg_pseudo_label,
    ),
    "depth": TaskSpec(
        name="depth",
        channels=lambda num_classes: 1,
        activation=_identity,
        loss=depth_loss,
        meter=lambda num_classes: DepthMeter(),
        predict=_identity,
        target="depth",
        primary_metric="mae",
        lower_is_better=True,
        pseudo_label=_depth_pseudo_label,
    ),
    "normal": TaskSpec(
        name="normal",
        channels=lambda num_classes: 3,
        activation=_unit,
        loss=normal_loss,
        meter=lambda num_classes: NormalMeter(),
        predict=_identity,
        target="normal",
        primary_metric="mean_angle",
        lower_is_better=True,
        pseudo_label=_normal_pseudo_label,
    ),
    "edge_texture": _map_spec("edge_texture", torch.sigmoid, edges=True),
    "edge_occlusion": _map_spec("edge_occlusion", torch.sigmoid, edges=True),
    "reshading": _map_spec("reshading", torch.sigmoid, edges=False),
    "curvature": _map_spec("curvature", _identity, edges=False),
}
"""Task name -> spec. Add an entry to add a task."""


def task_spec(name: str) -> TaskSpec:
    """The spec of task ``name``; a clear error naming the known tasks otherwise."""
    if name not in TASKS:
        raise ParamsError(f"model.tasks: unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]
