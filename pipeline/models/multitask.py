"""The multi-task network M: a shared encoder and one Taskonomy-style decoder per task.

Encoders (both reduce the input 32x):

* ``resnet18``: torchvision's ResNet-18 without its pooling and classifier, randomly initialised,
  or loaded from a user's local ImageNet state dict (never downloaded).
* ``halfwidth34``: the authors' encoder: ResNet-34 block counts [3, 4, 6, 3] of basic blocks at
  widths 48/96/192/360, behind a 5x5 stride-2 stem and a 3x3 stride-2 max pool.

Both expose ``pyramid(x)``: the feature maps at strides 2, 4, 8, 16 and 32 (channels in
``pyramid_channels``) for multi-scale networks such as MTI-Net; ``forward`` returns the 1/32 map,
which the guide projection, the SSL heads and the decoders read.

Decoders: five stages of (2x2 stride-2 transposed conv, BN, ReLU, 3x3 conv, BN, ReLU) with
channels 256/128/64/48/32, then a 3x3 conv to the task's channels; the output is resized to the
input when the input side is not a multiple of 32.

Tasks are looked up in :data:`TASKS`; a new task (edges, reshading, curvature, ...) joins by adding
one :class:`TaskSpec`. A single-task model is M with one task.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet18
from torchvision.models.resnet import BasicBlock

from pipeline.errors import ParamsError
from pipeline.tasks.registry import TASKS, task_spec

DEFAULT_DECODER_CHANNELS = (256, 128, 64, 48, 32)
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
        out = self.head(self.stages(features))
        if out.shape[-2:] != size:
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out


class MultiTaskNet(nn.Module):
    """Shared encoder + one decoder per task; ``forward`` returns ``{task: output}``."""

    def __init__(self, encoder: nn.Module, decoders: Mapping[str, nn.Module]) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoders = nn.ModuleDict(dict(decoders))
        self.tasks = list(decoders)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.decode(self.encoder(x), (x.shape[-2], x.shape[-1]))

    def decode(self, features: Tensor, size: tuple[int, int]) -> dict[str, Tensor]:
        """Every task's output from encoder features of images of ``size`` (what ``forward`` returns)."""
        return {
            task: TASKS[task].activation(decoder(features, size)) for task, decoder in self.decoders.items()
        }

    def features(self, x: Tensor) -> Tensor:
        """Globally average-pooled encoder features (B x C), e.g. for SimCLR or a guided latent."""
        return self.encoder(x).mean(dim=(-2, -1))

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
) -> MultiTaskNet:
    """M for ``tasks`` (a single-task model when one task is given)."""
    if not tasks:
        raise ParamsError("model.tasks: at least one task is needed")
    shared = build_encoder(encoder, pretrained=pretrained, widths=encoder_widths)
    decoders = {
        name: TaskDecoder(shared.out_channels, task_spec(name).channels(num_classes), decoder_channels)
        for name in tasks
    }
    return MultiTaskNet(shared, decoders)
