"""What a multi-task run is built from: the models of a variant, M, its loss, optimizer, schedule,
and the score that picks ``best.pt``. Used by the training loops and by ``evaluate``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.config import Params
from pipeline.errors import PipelineError
from pipeline.models.multitask import MultiTaskNet, build_multitask_net
from pipeline.tasks.losses import MultiTaskLoss
from pipeline.tasks.registry import TASKS

MIXED_VARIANT = "mgm-shards"
"""The ``train_mt`` variant on real shards mixed with weak ones (MGM without its GAN step); the name
``mgm`` belongs to the joint loop's M (``train_mgm``), the paper's method."""


@dataclass(frozen=True)
class ModelRun:
    """One model to train: ``mt`` or ``mgm`` (all tasks) or one task of the ``st`` variant."""

    variant: str
    name: str
    tasks: tuple[str, ...]
    folder: Path
    history_csv: Path


def model_runs(params: Params, variant: str) -> list[ModelRun]:
    """The models a variant trains: ``st`` one per task, ``mt`` and ``mgm-shards`` one with all tasks."""
    out, plots = Path(params.train_mt.out) / variant, Path(params.train_mt.plots) / variant
    tasks = tuple(params.model.tasks)
    if variant in ("mt", MIXED_VARIANT):
        return [ModelRun(variant, variant, tasks, out, plots / f"{variant}.csv")]
    if variant == "st":
        return [ModelRun("st", task, (task,), out / task, plots / f"{task}.csv") for task in tasks]
    raise PipelineError(f"unknown variant {variant!r} (st | mt | {MIXED_VARIANT})")


MODEL_CONFIG_KEYS = ("encoder", "encoder_widths", "decoder_channels", "architecture", "mti", "xtasc")
"""The ``model`` params that shape M's modules (stored in checkpoints that rebuild M, e.g. train_mgm's)."""


def model_config(params: Params) -> dict[str, Any]:
    """The ``model`` params that shape M, as plain data: :func:`build_multitask_net`'s keywords."""
    model = params.model.model_dump(mode="json")
    return {key: model[key] for key in MODEL_CONFIG_KEYS}


def build_model(params: Params, tasks: Sequence[str], num_classes: int) -> MultiTaskNet:
    """M for ``tasks`` as the ``model`` params describe it."""
    return build_multitask_net(tasks, num_classes, pretrained=params.model.pretrained, **model_config(params))


def build_loss(params: Params, tasks: Sequence[str]) -> MultiTaskLoss:
    loss = params.loss
    return MultiTaskLoss(
        tasks,
        {task: TASKS[task].loss for task in tasks},
        weights=loss.weights,
        weighting=loss.weighting,
        normal_kind=loss.normal,
        pseudo_labels={task: TASKS[task].pseudo_label for task in tasks},
        weak_consistency=loss.weak_consistency,
    )


def build_optimizer(params: Params, parameters: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
    cfg = params.train_mt
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(parameters, lr=cfg.lr, weight_decay=cfg.weight_decay)


def build_scheduler(params: Params, optimizer: torch.optim.Optimizer):
    """Stepped once per epoch; ``None`` for a constant learning rate."""
    cfg = params.train_mt
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_epochs, gamma=cfg.step_gamma)
    return None


def autocast_factory(device: torch.device, bf16: bool) -> Callable[[], Any]:
    """A context-manager factory: bfloat16 autocast when ``bf16``, else nothing."""
    if not bf16:
        return nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def selection_score(val: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]) -> float:
    """Weighted sum of the per-task mean validation losses (lower is better): picks ``best.pt``."""
    return sum(float(weights.get(task, 1.0)) * metrics["loss"] for task, metrics in val.items())
