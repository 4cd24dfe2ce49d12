"""The refinement network R: M's dense predictions -> scene logits.

Each task's prediction goes through its own conv encoder, the pooled vectors are concatenated and
two fully connected layers give the scene logits. Two encoders (``arch``):

* ``small``: three stride-2 3x3 conv + BN + ReLU stages at ``width`` channels, global average pooling;
* ``resnet``: the authors' size, a 5x5 stride-2 stem and three stages of basic residual blocks
  (3, 4, 3 blocks at ``width``, 2x and 4x ``width`` channels, the later two starting at stride 2);
  at width 48 and hidden 128 it is their 48/96/192 encoder and FC 576 -> 128 -> scenes for 3 tasks.

Segmentation enters as class probabilities (softmax of M's logits, ``seg_input="probabilities"``) or
as the logits themselves (``"logits"``, the authors'). Works at any input size (32..256 px and beyond).

Checkpoint entries (:func:`refinement_entry`) are plain dicts of numbers, strings, lists and
tensors, so they load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from pipeline.checkpoint import CheckpointError, load_state_strict
from pipeline.tasks.registry import task_spec

ENCODER_STAGES = 3
CONFIG_KEYS = ("tasks", "num_classes", "num_scenes", "width", "hidden")
OPTIONAL_CONFIG = {"arch": "small", "seg_input": "probabilities"}
"""Config keys that checkpoints written before they existed lack, with the value those meant."""
ARCHS = ("small", "resnet")
SEG_INPUTS = ("probabilities", "logits")
RESNET_BLOCKS = (3, 4, 3)


def task_encoder(in_channels: int, width: int) -> nn.Sequential:
    """Three stride-2 conv + BN + ReLU stages at ``width`` channels, then global average pooling."""
    layers: list[nn.Module] = []
    channels = in_channels
    for _ in range(ENCODER_STAGES):
        layers += [
            nn.Conv2d(channels, width, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        channels = width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN with a residual connection (a 1x1 conv + BN where the shape changes)."""

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def residual_task_encoder(in_channels: int, width: int) -> nn.Sequential:
    """The authors' per-task encoder: 5x5 stride-2 stem, then (3, 4, 3) basic blocks at ``width``,
    ``2 width``, ``4 width`` channels, then global average pooling (``4 width`` features)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, width, 5, stride=2, padding=2, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    channels = width
    for stage, blocks in enumerate(RESNET_BLOCKS):
        out = width * 2**stage
        for block in range(blocks):
            layers.append(BasicBlock(channels, out, 2 if stage and not block else 1))
            channels = out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers)


class RefinementNet(nn.Module):
    """R: ``{task: prediction}`` -> scene logits ``(B, num_scenes)``."""

    def __init__(
        self,
        tasks: Sequence[str],
        num_classes: int,
        num_scenes: int,
        width: int = 32,
        hidden: int = 256,
        arch: str = "small",
        seg_input: str = "probabilities",
    ) -> None:
        super().__init__()
        if not tasks:
            raise ValueError("RefinementNet needs at least one task")
        if arch not in ARCHS:
            raise ValueError(f"RefinementNet: unknown arch {arch!r} (known: {', '.join(ARCHS)})")
        if seg_input not in SEG_INPUTS:
            raise ValueError(
                f"RefinementNet: unknown seg_input {seg_input!r} (known: {', '.join(SEG_INPUTS)})"
            )
        if min(num_classes, num_scenes, width, hidden) < 1:
            raise ValueError(
                f"RefinementNet: num_classes ({num_classes}), num_scenes ({num_scenes}), width ({width}) "
                f"and hidden ({hidden}) must be positive"
            )
        self.tasks = list(tasks)
        self.num_classes = num_classes
        self.num_scenes = num_scenes
        self.width = width
        self.hidden = hidden
        self.arch = arch
        self.seg_input = seg_input
        self.in_channels = {task: task_spec(task).channels(num_classes) for task in self.tasks}
        build, features = (task_encoder, width) if arch == "small" else (residual_task_encoder, 4 * width)
        self.encoders = nn.ModuleDict(
            {task: build(channels, width) for task, channels in self.in_channels.items()}
        )
        self.classifier = nn.Sequential(
            nn.Linear(features * len(self.tasks), hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_scenes),
        )

    @property
    def config(self) -> dict[str, Any]:
        """The init arguments (stored in checkpoints)."""
        return {
            "tasks": list(self.tasks),
            "num_classes": self.num_classes,
            "num_scenes": self.num_scenes,
            "width": self.width,
            "hidden": self.hidden,
            "arch": self.arch,
            "seg_input": self.seg_input,
        }

    def forward(self, predictions: Mapping[str, Tensor]) -> Tensor:
        pooled = [self.encoders[task](self._input(task, predictions)) for task in self.tasks]
        return self.classifier(torch.cat(pooled, dim=1))

    def _input(self, task: str, predictions: Mapping[str, Tensor]) -> Tensor:
        if task not in predictions:
            raise KeyError(
                f"refinement network: prediction for task {task!r} missing (got {sorted(predictions)})"
            )
        prediction = predictions[task]
        expected = self.in_channels[task]
        if prediction.ndim != 4 or prediction.shape[1] != expected:
            raise ValueError(
                f"refinement network: {task} prediction has shape {tuple(prediction.shape)}, "
                f"expected B x {expected} x H x W"
            )
        if task == "seg" and self.seg_input == "probabilities":
            return torch.softmax(prediction, dim=1)
        return prediction


def refinement_entry(net: RefinementNet) -> dict[str, Any]:
    """``{"config": init args, "state": state dict}`` for a checkpoint (weights-only safe)."""
    return {"config": net.config, "state": net.state_dict()}


def load_refinement(
    entry: Mapping[str, Any], device: str | torch.device = "cpu", *, where: str = "refinement network"
) -> RefinementNet:
    """Rebuild R from :func:`refinement_entry` output; errors name ``where`` and the mismatched keys."""
    if not isinstance(entry, Mapping) or "config" not in entry or "state" not in entry:
        found = sorted(entry) if isinstance(entry, Mapping) else type(entry).__name__
        raise CheckpointError(f"{where}: expected a dict with 'config' and 'state', found {found}")
    config = {**OPTIONAL_CONFIG, **entry["config"]}
    missing = [key for key in CONFIG_KEYS if key not in config]
    unexpected = sorted(set(config) - set(CONFIG_KEYS) - set(OPTIONAL_CONFIG))
    if missing or unexpected:
        raise CheckpointError(f"{where}: config has missing keys {missing}, unexpected keys {unexpected}")
    try:
        net = RefinementNet(**config)
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{where}: invalid config {dict(config)}: {err}") from err
    load_state_strict(net, dict(entry["state"]), where)
    return net.to(device)
