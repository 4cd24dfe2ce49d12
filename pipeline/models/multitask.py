"""The multi-task network M: a shared encoder and a multi-task head (``model.architecture``).

Encoders (both reduce the input 32x):

* ``resnet18``: torchvision's ResNet-18 without its pooling and classifier, randomly initialised,
  or loaded from a user's local ImageNet state dict (never downloaded).
* ``halfwidth34``: the authors' encoder: ResNet-34 block counts [3, 4, 6, 3] of basic blocks at
  widths 48/96/192/360, behind a 5x5 stride-2 stem and a 3x3 stride-2 max pool.

Both expose ``pyramid(x)``: the feature maps at strides 2, 4, 8, 16 and 32 (channels in
``pyramid_channels``) for multi-scale networks such as MTI-Net; ``forward`` returns the 1/32 map,
which the guide projection, the SSL heads and the decoders read.

Heads:

* ``shared``: one Taskonomy-style decoder per task on the 1/32 map (five stages of 2x2 stride-2
  transposed conv, BN, ReLU, 3x3 conv, BN, ReLU, then a 3x3 conv; :mod:`pipeline.models.heads`).
* ``unet``: the same decoders with skip connections from the encoder's maps at strides 2 ... 16
  (the control for MTI-Net's access to high-resolution features).
* ``mti``: MTI-Net on the pyramid (:mod:`pipeline.models.mti`).
* ``xtasc``: the shared decoders plus XTasC-Net's task-transfer networks (:mod:`pipeline.models.xtasc`).

Tasks are looked up in :data:`TASKS`; a new task (edges, reshading, curvature, ...) joins by adding
one :class:`TaskSpec`. A single-task model is M with one task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torchvision.models import resnet18
from torchvision.models.resnet import BasicBlock

from pipeline.errors import ParamsError
from pipeline.models.heads import (
    DEFAULT_DECODER_CHANNELS,
    Decoded,
    SharedHead,
    SkipHead,
    SkipTaskDecoder,
    TaskDecoder,
)
from pipeline.models.mti import MtiHead
from pipeline.models.xtasc import XtascHead
from pipeline.tasks.registry import TASKS, task_spec

HALF_WIDTHS = (48, 96, 192, 360)
HALF_BLOCKS = (3, 4, 6, 3)
PYRAMID_STRIDES = (2, 4, 8, 16, 32)
"""The feature scales an encoder's :func:`encoder_pyramid` gives (input side / map side)."""


def encoder_pyramid(stem: nn.Sequential, layers: nn.Sequential, x: Tensor) -> dict[int, Tensor]:
    """Stride -> feature map: the stem's stride-2 conv block (before its max pool) at 1/2, then each
    of the four stages at 1/4 ... 1/32. The 1/32 map is exactly what ``forward`` returns; multi-scale
    networks (MTI-Net) read the others. The stem is split by index, so the modules (and checkpoints)
    stay those of the single-scale encoder."""
    maps: dict[int, Tensor] = {}
    h = stem[:-1](x)
    maps[2] = h
    h = stem[-1](h)
    for index, layer in enumerate(layers):
        h = layer(h)
        maps[4 * 2**index] = h
    return maps


class ResNet18Encoder(nn.Module):
    """torchvision ResNet-18 up to ``layer4`` (512 channels at 1/32 of the input)."""

    def __init__(self, weights_path: str | Path | None = None) -> None:
        super().__init__()
        net = resnet18(weights=None)
        if weights_path is not None:
            load_imagenet_weights(net, weights_path)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layers = nn.Sequential(net.layer1, net.layer2, net.layer3, net.layer4)
        self.out_channels = 512
        self.pyramid_channels = {2: 64, 4: 64, 8: 128, 16: 256, 32: 512}

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(self.stem(x))

    def pyramid(self, x: Tensor) -> dict[int, Tensor]:
        """Feature maps at strides 2 ... 32 (:func:`encoder_pyramid`)."""
        return encoder_pyramid(self.stem, self.layers, x)


def load_imagenet_weights(net: nn.Module, path: str | Path) -> None:
    """Load a local torchvision ResNet-18 state dict (``fc.*`` may be present and is used or not)."""
    from pipeline.checkpoint import CheckpointError

    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"model.pretrained: {path} does not exist (weights are never downloaded)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"model.pretrained: {path} cannot be loaded: {err}") from err
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    missing, unexpected = net.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"model.pretrained: {path} is not a ResNet-18 state dict "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )


class HalfWidthEncoder(nn.Module):
    """The authors' encoder: 5x5 stride-2 stem, max pool, basic blocks [3,4,6,3] at 48/96/192/360."""

    def __init__(self, widths: Sequence[int] = HALF_WIDTHS, blocks: Sequence[int] = HALF_BLOCKS) -> None:
        super().__init__()
        if len(widths) != 4 or len(blocks) != 4:
            raise ParamsError("model.encoder_widths: the half-width encoder needs 4 widths")
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 5, stride=2, padding=2, bias=False),
            nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages, channels = [], widths[0]
        for index, (width, count) in enumerate(zip(widths, blocks)):
            stride = 1 if index == 0 else 2
            stages.append(_basic_stage(channels, width, count, stride))
            channels = width
        self.layers = nn.Sequential(*stages)
        self.out_channels = channels
        self.pyramid_channels = {2: widths[0], **{4 * 2**index: width for index, width in enumerate(widths)}}
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(self.stem(x))

    def pyramid(self, x: Tensor) -> dict[int, Tensor]:
        """Feature maps at strides 2 ... 32 (:func:`encoder_pyramid`)."""
        return encoder_pyramid(self.stem, self.layers, x)


def _basic_stage(in_channels: int, width: int, count: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or in_channels != width:
        downsample = nn.Sequential(
            nn.Conv2d(in_channels, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width)
        )
    blocks = [BasicBlock(in_channels, width, stride, downsample)]
    blocks += [BasicBlock(width, width) for _ in range(count - 1)]
    return nn.Sequential(*blocks)


ARCHITECTURES = ("shared", "unet", "mti", "xtasc")
"""``model.architecture``: what sits between the shared encoder and the task outputs."""

Features = Mapping[int, Tensor]
"""Encoder feature maps by stride (input side / map side), as :meth:`MultiTaskNet.encode` gives them."""


def as_feature_maps(features: Features | Tensor) -> Features:
    """Encoder maps by stride; a bare tensor is the 1/32 map (what the encoder's ``forward`` gives)."""
    return {32: features} if isinstance(features, Tensor) else features


class MultiTaskNet(nn.Module):
    """A shared encoder and a multi-task head; ``forward`` returns ``{task: output}``.

    The head (``decoders``) is ``shared`` (one decoder per task), MTI-Net or XTasC-Net
    (:mod:`pipeline.models.heads`, :mod:`~pipeline.models.mti`, :mod:`~pipeline.models.xtasc`). It
    reads the encoder maps at the strides it declares; the 1/32 map is always among them, since the
    guide projection and the SSL heads read it (:meth:`features`).
    """

    def __init__(self, encoder: nn.Module, decoders: nn.Module, tasks: Sequence[str] | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoders = decoders if not isinstance(decoders, Mapping) else SharedHead(dict(decoders))
        self.tasks = list(tasks) if tasks is not None else list(self.decoders)
        self.strides = tuple(sorted(set(getattr(self.decoders, "strides", (32,))) | {32}))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.decode(self.encode(x), (x.shape[-2], x.shape[-1]))

    def encode(self, x: Tensor) -> dict[int, Tensor]:
        """The encoder maps the head reads, by stride (one encoder pass)."""
        if self.strides == (32,):
            return {32: self.encoder(x)}
        maps = self.encoder.pyramid(x)
        return {stride: maps[stride] for stride in self.strides}

    def decode(
        self, features: Features | Tensor, size: tuple[int, int], tasks: Sequence[str] | None = None
    ) -> dict[str, Tensor]:
        """Every task's (or ``tasks``') activated output from :meth:`encode`'s maps of images of
        ``size`` (what ``forward`` returns). A bare tensor is read as the 1/32 map."""
        return self.decode_training(features, size, tasks, auxiliary=False).outputs

    def decode_training(
        self,
        features: Features | Tensor,
        size: tuple[int, int],
        tasks: Sequence[str] | None = None,
        *,
        auxiliary: bool = True,
    ) -> Decoded:
        """Activated final outputs and the head's auxiliary outputs (MTI-Net's per-scale predictions,
        XTasC-Net's transfers) that the training loss adds (:meth:`MultiTaskLoss.auxiliary_losses`)."""
        maps = as_feature_maps(features)
        missing = [stride for stride in self.strides if stride not in maps]
        if missing:
            raise ValueError(
                f"MultiTaskNet.decode: the head reads strides {list(self.strides)}; missing {missing}"
            )
        decoded = self.decoders.decode(maps, size, tasks, auxiliary)
        outputs = {task: TASKS[task].activation(out) for task, out in decoded.outputs.items()}
        extra = [replace(aux, output=TASKS[aux.task].activation(aux.output)) for aux in decoded.auxiliary]
        return Decoded(outputs, extra)

    def features(self, x: Tensor) -> Tensor:
        """Globally average-pooled encoder features (B x C), e.g. for SimCLR or a guided latent."""
        return self.encoder(x).mean(dim=(-2, -1))

    @property
    def auxiliary_names(self) -> tuple[str, ...]:
        """Names of the head's auxiliary losses (MTI-Net's per-scale, XTasC-Net's transfer terms)."""
        return tuple(getattr(self.decoders, "auxiliary_names", ()))

    @property
    def feature_channels(self) -> int:
        return int(self.encoder.out_channels)


def build_encoder(
    name: str, *, pretrained: str | Path | None = None, widths: Sequence[int] = HALF_WIDTHS
) -> nn.Module:
    """``resnet18`` or ``halfwidth34``."""
    if name == "resnet18":
        return ResNet18Encoder(pretrained)
    if name == "halfwidth34":
        if pretrained is not None:
            raise ParamsError("model.pretrained: ImageNet weights exist for the resnet18 encoder only")
        return HalfWidthEncoder(widths)
    raise ParamsError(f"model.encoder: unknown encoder {name!r} (resnet18 | halfwidth34)")


def build_multitask_net(
    tasks: Sequence[str],
    num_classes: int,
    *,
    encoder: str = "resnet18",
    pretrained: str | Path | None = None,
    encoder_widths: Sequence[int] = HALF_WIDTHS,
    decoder_channels: Sequence[int] = DEFAULT_DECODER_CHANNELS,
    architecture: str = "shared",
    mti: Mapping[str, Any] | None = None,
    xtasc: Mapping[str, Any] | None = None,
) -> MultiTaskNet:
    """M for ``tasks`` (a single-task model when one task is given).

    ``mti`` / ``xtasc``: the keyword arguments of :class:`MtiHead` / :class:`XtascHead` (the
    ``model.mti`` / ``model.xtasc`` params); XTasC-Net's pairs are kept to those within ``tasks``.
    """
    if not tasks:
        raise ParamsError("model.tasks: at least one task is needed")
    shared = build_encoder(encoder, pretrained=pretrained, widths=encoder_widths)
    outputs = {name: task_spec(name).channels(num_classes) for name in tasks}
    if architecture == "shared":
        head: nn.Module = SharedHead(
            {name: TaskDecoder(shared.out_channels, out, decoder_channels) for name, out in outputs.items()}
        )
    elif architecture == "unet":
        skips = {stride: shared.pyramid_channels[stride] for stride in (2, 4, 8, 16)}
        head = SkipHead(
            {
                name: SkipTaskDecoder(shared.out_channels, skips, out, decoder_channels)
                for name, out in outputs.items()
            }
        )
    elif architecture == "mti":
        head = MtiHead(outputs, shared.pyramid_channels, **dict(mti or {}))
    elif architecture == "xtasc":
        options = dict(xtasc or {})
        pairs = [tuple(pair) for pair in options.pop("pairs", None) or default_pairs(tasks)]
        pairs = [pair for pair in pairs if set(pair) <= set(tasks)]
        head = XtascHead(outputs, shared.out_channels, decoder_channels, pairs=pairs, **options)
    else:
        raise ParamsError(
            f"model.architecture: unknown architecture {architecture!r} ({' | '.join(ARCHITECTURES)})"
        )
    return MultiTaskNet(shared, head, list(tasks))


def default_pairs(tasks: Sequence[str]) -> list[tuple[str, str]]:
    """Every ordered pair of distinct tasks (XTasC-Net's transfers when ``model.xtasc.pairs`` is empty)."""
    return [(source, target) for source in tasks for target in tasks if source != target]
