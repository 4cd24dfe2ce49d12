"""MTI-Net (Vandenhende, Georgoulis, Van Gool, ECCV 2020) as a head on the encoder's feature pyramid.

Read from the authors' description and code (see ``docs/design/multitask-networks.md``), written here
for our encoders and tasks. From the coarsest scale to the finest:

1. **Initial task predictions** at every scale: per task two basic blocks on the scale's (reduced)
   encoder map, concatenated below the coarsest scale with the task's propagated features from the
   scale above, then a 1x1 conv to the task's outputs. These per-scale predictions are deep-supervised
   with the task losses (:class:`pipeline.models.heads.AuxiliaryOutput`, ``supervision="label"``).
2. **Feature propagation (FPM)** at every scale but the finest: the task features, concatenated,
   gated by a softmax over tasks, reduced to one shared map, then per task a squeeze-and-excitation
   block plus the task's own features; the result feeds the next finer scale's initial predictions.
3. **Multi-modal distillation** at every scale: each task's features plus, from every other task, a
   spatial-attention gated message ``sigmoid(conv(F_a)) * conv(F_a)``.
4. **Feature aggregation**: per task, the distilled features of all scales upsampled to the finest
   scale, concatenated, 1x1 conv, BN, ReLU, 1x1 conv, upsampled to the image.

Ours, where the paper's HRNet backbone is not what we run: each pyramid level is first reduced by a
1x1 conv to ``channels`` (HRNet-W18's 18/36/72/144 by default), and the FPM softmax runs over tasks for
each channel (the authors' reshape groups adjacent channels instead; see the design note).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from pipeline.errors import ParamsError
from pipeline.models.heads import AuxiliaryOutput, Decoded, resize_to
from pipeline.models.pyramid_scales import check_scales


def _block(in_channels: int, out_channels: int) -> BasicBlock:
    """A basic residual block, with a 1x1 conv + BN shortcut when the width changes."""
    shortcut = None
    if in_channels != out_channels:
        shortcut = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
        )
    return BasicBlock(in_channels, out_channels, downsample=shortcut)


class SqueezeExcitation(nn.Module):
    """Channel gating from globally pooled features (Hu et al. 2018)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(1, channels // reduction)
        self.gate = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels), nn.Sigmoid()
        )

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x.mean(dim=(-2, -1)))[:, :, None, None]


class InitialPredictions(nn.Module):
    """One scale's per-task features (two basic blocks) and initial predictions (a 1x1 conv)."""

    def __init__(self, tasks: Mapping[str, int], in_channels: int, channels: int) -> None:
        super().__init__()
        self.features = nn.ModuleDict(
            {task: nn.Sequential(_block(in_channels, channels), _block(channels, channels)) for task in tasks}
        )
        self.predict = nn.ModuleDict({task: nn.Conv2d(channels, out, 1) for task, out in tasks.items()})

    def forward(
        self, backbone: Tensor, propagated: Mapping[str, Tensor] | None
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        features = {}
        for task, layers in self.features.items():
            x = backbone
            if propagated is not None:
                above = F.interpolate(
                    propagated[task], size=backbone.shape[-2:], mode="bilinear", align_corners=False
                )
                x = torch.cat([backbone, above], dim=1)
            features[task] = layers(x)
        return features, {task: self.predict[task](features[task]) for task in features}


class FeaturePropagation(nn.Module):
    """MTI-Net's FPM: a softmax over tasks gates the concatenated task features, which are reduced to
    one shared map; each task then takes a squeeze-excitation view of it plus its own features."""

    def __init__(self, tasks: Sequence[str], channels: int, reduction: int, se_reduction: int) -> None:
        super().__init__()
        self.tasks = list(tasks)
        total = len(self.tasks) * channels
        squeezed = max(1, total // reduction)
        self.attention = nn.Sequential(
            _block(total, squeezed), _block(squeezed, squeezed), nn.Conv2d(squeezed, total, 1)
        )
        self.reduce = _block(total, channels)
        self.excite = nn.ModuleDict({task: SqueezeExcitation(channels, se_reduction) for task in self.tasks})

    def forward(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        stacked = torch.cat([features[task] for task in self.tasks], dim=1)
        batch, total, height, width = stacked.shape
        count = len(self.tasks)
        mask = self.attention(stacked).view(batch, count, total // count, height, width).softmax(dim=1)
        gated = (stacked.view(batch, count, total // count, height, width) * mask).view_as(stacked)
        shared = self.reduce(gated)
        return {task: self.excite[task](shared) + features[task] for task in self.tasks}


class SpatialAttentionMessage(nn.Module):
    """``sigmoid(conv(x)) * conv(x)``: PAD-Net's gated message from one task's features to another's."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gate = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.value = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.gate(x)) * self.value(x)


class Distillation(nn.Module):
    """Multi-modal distillation at one scale: each task's features plus every other task's message."""

    def __init__(self, tasks: Sequence[str], channels: int) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.messages = nn.ModuleDict(
            {
                f"{source}_to_{target}": SpatialAttentionMessage(channels)
                for target in self.tasks
                for source in self.tasks
                if source != target
            }
        )

    def forward(self, features: Mapping[str, Tensor]) -> dict[str, Tensor]:
        out = {}
        for target in self.tasks:
            messages = [
                self.messages[f"{source}_to_{target}"](features[source])
                for source in self.tasks
                if source != target
            ]
            out[target] = features[target] + sum(messages) if messages else features[target]
        return out


class Aggregation(nn.Module):
    """One task's final prediction from its distilled features at every scale (HRNet-style head)."""

    def __init__(self, channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        total = sum(channels)
        self.layers = nn.Sequential(
            nn.Conv2d(total, total, 1, bias=False),
            nn.BatchNorm2d(total),
            nn.ReLU(inplace=True),
            nn.Conv2d(total, out_channels, 1),
        )

    def forward(self, scales: Sequence[Tensor]) -> Tensor:
        finest = scales[0].shape[-2:]
        upsampled = [scales[0]] + [
            F.interpolate(x, size=finest, mode="bilinear", align_corners=False) for x in scales[1:]
        ]
        return self.layers(torch.cat(upsampled, dim=1))


class MtiHead(nn.Module):
    """MTI-Net on an encoder's pyramid (module docstring). ``tasks``: task -> output channels;
    ``encoder_channels``: stride -> the encoder's channels there; ``scales``: strides, finest first."""

    def __init__(
        self,
        tasks: Mapping[str, int],
        encoder_channels: Mapping[int, int],
        *,
        scales: Sequence[int] = (4, 8, 16, 32),
        channels: Sequence[int] = (18, 36, 72, 144),
        fpm_reduction: int = 4,
        se_reduction: int = 16,
        deep_supervision: float = 1.0,
    ) -> None:
        super().__init__()
        check_scales(scales)
        if len(channels) != len(scales):
            raise ParamsError(
                f"model.mti.channels: one width per scale is needed ({len(scales)} scales), "
                f"got {list(channels)}"
            )
        self.tasks = dict(tasks)
        self.strides = tuple(scales)
        self.deep_supervision = float(deep_supervision)
        widths = list(channels)
        self.reduce = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(encoder_channels[stride], width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            )
            for stride, width in zip(self.strides, widths)
        )
        last = len(widths) - 1
        self.initial = nn.ModuleList(
            InitialPredictions(self.tasks, width + (widths[i + 1] if i < last else 0), width)
            for i, width in enumerate(widths)
        )
        self.propagate = nn.ModuleList(
            FeaturePropagation(list(self.tasks), width, fpm_reduction, se_reduction) for width in widths[1:]
        )
        self.distill = nn.ModuleList(Distillation(list(self.tasks), width) for width in widths)
        self.aggregate = nn.ModuleDict({task: Aggregation(widths, out) for task, out in self.tasks.items()})
        self.auxiliary_names = tuple(
            f"mti_s{stride}_{task}" for stride in reversed(self.strides) for task in self.tasks
        )

    def decode(
        self,
        maps: Mapping[int, Tensor],
        size: tuple[int, int],
        tasks: Sequence[str] | None = None,
        auxiliary: bool = False,
    ) -> Decoded:
        count = len(self.strides)
        distilled: list[dict[str, Tensor]] = [{} for _ in range(count)]
        extra: list[AuxiliaryOutput] = []
        propagated: dict[str, Tensor] | None = None
        for index in reversed(range(count)):  # coarsest first
            stride = self.strides[index]
            backbone = self.reduce[index](maps[stride])
            features, initial = self.initial[index](backbone, propagated)
            if auxiliary:
                extra += [
                    AuxiliaryOutput(
                        f"mti_s{stride}_{task}", task, resize_to(p, size), "label", self.deep_supervision
                    )
                    for task, p in initial.items()
                ]
            if index > 0:
                propagated = self.propagate[index - 1](features)
            distilled[index] = self.distill[index](features)
        wanted = list(self.tasks) if tasks is None else list(tasks)
        outputs = {
            task: resize_to(self.aggregate[task]([distilled[i][task] for i in range(count)]), size)
            for task in wanted
        }
        return Decoded(outputs, extra)
