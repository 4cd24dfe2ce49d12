"""What every multi-task head returns, the ``shared`` head (one independent decoder per task) and the
``unet`` head (the same decoders with skip connections from the encoder's pyramid).

A head reads the encoder's feature maps (stride -> map) and returns :class:`Decoded`: the final
per-task outputs and, for training, the auxiliary outputs its architecture adds to the loss (MTI-Net's
per-scale predictions, XTasC-Net's task-transfer predictions). Outputs here are *raw* (before the
task activation); :class:`pipeline.models.multitask.MultiTaskNet` applies the activations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_DECODER_CHANNELS = (256, 128, 64, 48, 32)

Supervision = Literal["label", "prediction"]
"""What an auxiliary output is compared with: the task's ground truth, or the network's own final
prediction of that task, detached (XTasC-Net's cross-task consistency)."""


@dataclass
class AuxiliaryOutput:
    """One extra prediction of ``task`` that the training loss scores with ``weight``."""

    name: str
    task: str
    output: Tensor
    supervision: Supervision
    weight: float


@dataclass
class Decoded:
    """Final per-task outputs and the auxiliary outputs of one forward pass."""

    outputs: dict[str, Tensor]
    auxiliary: list[AuxiliaryOutput] = field(default_factory=list)


def resize_to(output: Tensor, size: tuple[int, int]) -> Tensor:
    """``output`` bilinearly resized to ``size`` (unchanged when it already has that size)."""
    if output.shape[-2:] == size:
        return output
    return F.interpolate(output, size=size, mode="bilinear", align_corners=False)


class TaskDecoder(nn.Module):
    """Taskonomy-style decoder: upsampling stages back to the input size, then the task head."""

    def __init__(
        self, in_channels: int, out_channels: int, channels: Sequence[int] = DEFAULT_DECODER_CHANNELS
    ) -> None:
        super().__init__()
        stages, previous = [], in_channels
        for width in channels:
            stages += [
                nn.ConvTranspose2d(previous, width, 2, stride=2, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            previous = width
        self.stages = nn.Sequential(*stages)
        self.head = nn.Conv2d(previous, out_channels, 3, padding=1)

    def forward(self, features: Tensor, size: tuple[int, int]) -> Tensor:
        return resize_to(self.head(self.stages(features)), size)


class SharedHead(nn.ModuleDict):
    """``shared``: one independent :class:`TaskDecoder` per task on the encoder's 1/32 map.

    A ``ModuleDict`` (task -> decoder), so checkpoints keep the keys ``decoders.<task>.*`` they had
    before heads existed."""

    strides = (32,)
    auxiliary_names: tuple[str, ...] = ()

    def decode(
        self,
        maps: Mapping[int, Tensor],
        size: tuple[int, int],
        tasks: Sequence[str] | None = None,
        auxiliary: bool = False,
    ) -> Decoded:
        """The wanted tasks' raw outputs (``shared`` has no auxiliary outputs)."""
        wanted = list(self) if tasks is None else list(tasks)
        features = self.decoder_input(maps)
        return Decoded({task: self[task](features, size) for task in wanted})

    def decoder_input(self, maps: Mapping[int, Tensor]) -> Tensor | Mapping[int, Tensor]:
        """What each task decoder reads: the 1/32 map."""
        return maps[32]


class SkipTaskDecoder(nn.Module):
    """:class:`TaskDecoder` with U-Net skip connections: after each upsampling to stride ``s``, the
    encoder's map at ``s`` (when ``skip_channels`` has it) is concatenated before the 3x3 conv.

    The control for MTI-Net's multi-scale input: the same per-task decoders as ``shared``, reading
    the high-resolution encoder maps too, without any distillation between tasks.
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: Mapping[int, int],
        out_channels: int,
        channels: Sequence[int] = DEFAULT_DECODER_CHANNELS,
    ) -> None:
        super().__init__()
        self.skip_strides = [32 // 2 ** (index + 1) for index in range(len(channels))]
        self.up, self.fuse = nn.ModuleList(), nn.ModuleList()
        previous = in_channels
        for width, stride in zip(channels, self.skip_strides):
            self.up.append(
                nn.Sequential(
                    nn.ConvTranspose2d(previous, width, 2, stride=2, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                )
            )
            extra = skip_channels.get(stride, 0)
            self.fuse.append(
                nn.Sequential(
                    nn.Conv2d(width + extra, width, 3, padding=1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                )
            )
            previous = width
        self.skip_channels = dict(skip_channels)
        self.head = nn.Conv2d(previous, out_channels, 3, padding=1)

    def forward(self, maps: Mapping[int, Tensor], size: tuple[int, int]) -> Tensor:
        h = maps[32]
        for up, fuse, stride in zip(self.up, self.fuse, self.skip_strides):
            h = up(h)
            if stride in self.skip_channels:
                h = torch.cat([h, resize_to(maps[stride], (h.shape[-2], h.shape[-1]))], dim=1)
            h = fuse(h)
        return resize_to(self.head(h), size)


class SkipHead(SharedHead):
    """``unet``: one :class:`SkipTaskDecoder` per task on the encoder maps at strides 2 ... 32."""

    strides = (2, 4, 8, 16, 32)

    def decoder_input(self, maps: Mapping[int, Tensor]) -> Tensor | Mapping[int, Tensor]:
        """What each task decoder reads: every map, for its skips."""
        return maps
