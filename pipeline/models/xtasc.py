"""XTasC-Net (Nakano, Chen, Demachi 2021, cross-task consistency learning) as a multi-task head.

Per task an independent decoder on the encoder's 1/32 map (as in ``shared``), plus one *task-transfer
network* per ordered pair (source, target): a small U-Net that maps the source task's prediction to the
target task. Its output is scored two ways (the paper's two losses, weights in ``model.xtasc``):

* **cross-task consistency**: against the target task's own direct prediction, *detached*, so the
  loss pulls the source branch (and the shared encoder) towards agreeing with the target branch
  without moving the target branch itself (``supervision="prediction"``);
* **alignment**: against the target's ground truth (``supervision="label"``).

The paper and the authors' code cover two tasks; any list of ordered pairs works here. The transfer
input is not detached (the authors' code): its gradient reaches the source decoder and the encoder.
Segmentation enters a transfer net as log-probabilities, depth in metres, normals as unit vectors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.errors import ParamsError
from pipeline.models.heads import AuxiliaryOutput, Decoded, TaskDecoder
from pipeline.tasks.registry import TASKS

DEFAULT_TRANSFER_WIDTHS = (8, 16, 32)


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class TransferNet(nn.Module):
    """A U-Net with three 2x max-pool stages and skip connections, then a 1x1 conv to the target's
    channels. Inputs whose side is not a multiple of 8 are padded and the output cropped back."""

    def __init__(
        self, in_channels: int, out_channels: int, widths: Sequence[int] = DEFAULT_TRANSFER_WIDTHS
    ) -> None:
        super().__init__()
        if len(widths) != 3:
            raise ParamsError(f"model.xtasc.widths: three widths are needed, got {list(widths)}")
        w1, w2, w3 = widths
        self.down = nn.ModuleList([_double_conv(in_channels, w1), _double_conv(w1, w2), _double_conv(w2, w3)])
        self.bottom = _double_conv(w3, w3)
        self.up = nn.ModuleList(
            [_double_conv(w3 + w3, w3), _double_conv(w3 + w2, w2), _double_conv(w2 + w1, w1)]
        )
        self.out = nn.Conv2d(w1, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % 8, (-width) % 8
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        skips = []
        for layer in self.down:
            x = layer(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        for layer, skip in zip(self.up, reversed(skips)):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = layer(torch.cat([x, skip], dim=1))
        return self.out(x)[..., :height, :width]


def transfer_input(task: str, raw: Tensor) -> Tensor:
    """What a transfer net reads of ``task``'s raw output: log-probabilities for segmentation, the
    activated output (metres, unit normals) otherwise."""
    if task == "seg":
        return F.log_softmax(raw.float(), dim=1).to(raw.dtype)
    return TASKS[task].activation(raw)


def pair_name(source: str, target: str) -> str:
    return f"{source}_to_{target}"


class XtascHead(nn.Module):
    """Per-task decoders plus one transfer net per ordered pair (module docstring)."""

    strides = (32,)

    def __init__(
        self,
        tasks: Mapping[str, int],
        in_channels: int,
        decoder_channels: Sequence[int],
        *,
        pairs: Sequence[tuple[str, str]],
        widths: Sequence[int] = DEFAULT_TRANSFER_WIDTHS,
        consistency_weight: float = 0.01,
        alignment_weight: float = 0.0,
    ) -> None:
        super().__init__()
        self.tasks = dict(tasks)
        unknown = sorted({task for pair in pairs for task in pair} - set(self.tasks))
        if unknown:
            raise ParamsError(
                f"model.xtasc.pairs: task(s) {unknown} are not predicted (tasks {list(self.tasks)})"
            )
        self.consistency_weight = float(consistency_weight)
        self.alignment_weight = float(alignment_weight)
        scored = self.consistency_weight > 0 or self.alignment_weight > 0
        # No transfer nets when no loss scores them (parameters without gradients break DDP).
        self.pairs = [(source, target) for source, target in pairs] if scored else []
        self.decoders = nn.ModuleDict(
            {task: TaskDecoder(in_channels, out, decoder_channels) for task, out in self.tasks.items()}
        )
        self.transfers = nn.ModuleDict(
            {
                pair_name(source, target): TransferNet(self.tasks[source], self.tasks[target], widths)
                for source, target in self.pairs
            }
        )

    @property
    def auxiliary_names(self) -> tuple[str, ...]:
        """The names of the auxiliary outputs (and of their losses), in :meth:`decode`'s order."""
        names = []
        for source, target in self.pairs:
            name = pair_name(source, target)
            names += [f"xt_{name}"] if self.consistency_weight > 0 else []
            names += [f"xa_{name}"] if self.alignment_weight > 0 else []
        return tuple(names)

    def decode(
        self,
        maps: Mapping[int, Tensor],
        size: tuple[int, int],
        tasks: Sequence[str] | None = None,
        auxiliary: bool = False,
    ) -> Decoded:
        wanted = list(self.tasks) if tasks is None else list(tasks)
        needed = set(wanted) | ({task for pair in self.pairs for task in pair} if auxiliary else set())
        outputs = {task: self.decoders[task](maps[32], size) for task in self.tasks if task in needed}
        extra: list[AuxiliaryOutput] = []
        if auxiliary:
            for source, target in self.pairs:
                name = pair_name(source, target)
                transferred = self.transfers[name](transfer_input(source, outputs[source]))
                if self.consistency_weight > 0:
                    extra.append(
                        AuxiliaryOutput(
                            f"xt_{name}", target, transferred, "prediction", self.consistency_weight
                        )
                    )
                if self.alignment_weight > 0:
                    extra.append(
                        AuxiliaryOutput(f"xa_{name}", target, transferred, "label", self.alignment_weight)
                    )
        return Decoded({task: outputs[task] for task in wanted}, extra)
