"""Losses on the weak (scene-label-only) samples of a mixed batch: ``train_mt``'s ``mgm`` variant.

* ``scene``: cross-entropy of the frozen refinement network R (from the ``train_mgm`` checkpoint
  ``mix.refinement``) applied to M's predictions of the weak images, against their scene labels. R
  and M's decoders are frozen for this loss, so it updates M's encoder only, as step 5 of the
  joint loop does.
* ``ssl``: the self-supervised loss of M's encoder (:func:`pipeline.train.ssl.ssl_loss`: SimCLR's
  NT-Xent on two augmented views, or reconstruction) on the weak images; its head trains with M.

Labelled samples get the dense losses only (weak samples carry ignore-valued dense targets, so the
dense losses skip them); weak samples get these two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.checkpoint import CheckpointError, load_checkpoint
from pipeline.config import Params
from pipeline.errors import ParamsError
from pipeline.models.multitask import MultiTaskNet
from pipeline.models.refinement import RefinementNet, load_refinement
from pipeline.tasks.losses import LossSum
from pipeline.tasks.registry import TASKS
from pipeline.train.ssl import BatchAugment, build_ssl_head, ssl_loss

MIN_SSL_IMAGES = 2  # NT-Xent needs negatives, and batch norm more than one image


def load_frozen_refinement(
    path: str | Path,
    tasks: Sequence[str],
    num_classes: int,
    scene_names: Sequence[str],
    device: torch.device,
) -> RefinementNet:
    """R from a ``train_mgm`` checkpoint, checked against M's tasks and the data, frozen, in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(
            f"mix.refinement: checkpoint {path} does not exist (run `mgm train_mgm`, or set "
            "mix.scene_weight=0 to train without the scene loss on weak samples)"
        )
    checkpoint = load_checkpoint(path, map_location=device)
    if checkpoint.get("refinement") is None:
        raise CheckpointError(
            f"mix.refinement: {path} holds no refinement network (trained with mgm.refinement=false?); "
            "set mix.scene_weight=0 or point mix.refinement at a checkpoint with one"
        )
    net = load_refinement(checkpoint["refinement"], device, where=f"mix.refinement {path}")
    stored_scenes = checkpoint.get("scene_names")
    problems = []
    if stored_scenes is not None and list(stored_scenes) != list(scene_names):
        problems.append(f"scenes {list(stored_scenes)} (the real shards have {list(scene_names)})")
    if net.num_scenes != len(scene_names):
        problems.append(f"{net.num_scenes} scene classes (the real shards have {len(scene_names)})")
    if net.num_classes != num_classes:
        problems.append(f"{net.num_classes} segmentation classes (the real shards have {num_classes})")
    missing = [task for task in net.tasks if task not in tasks]
    if missing:
        problems.append(f"tasks {net.tasks}, but M predicts only {list(tasks)}")
    if problems:
        raise CheckpointError(f"mix.refinement: the refinement network in {path} has " + "; ".join(problems))
    net.eval()
    net.requires_grad_(False)
    return net


def encoder_only_predictions(
    net: MultiTaskNet, features: Tensor, size: tuple[int, int], tasks: Sequence[str]
) -> dict[str, Tensor]:
    """M's predictions from encoder ``features`` through which a loss reaches the encoder only (step 5).

    The decoders run with their parameters out of the graph and in eval mode, so their batch-norm
    statistics neither see nor learn from the weak images; the features keep their gradient path.
    """
    predictions = {}
    for task in tasks:
        decoder = net.decoders[task]
        flags, mode = [param.requires_grad for param in decoder.parameters()], decoder.training
        decoder.requires_grad_(False).eval()
        try:
            predictions[task] = TASKS[task].activation(decoder(features, size))
        finally:
            decoder.train(mode)
            for param, flag in zip(decoder.parameters(), flags):
                param.requires_grad_(flag)
    return predictions


class WeakLosses(nn.Module):
    """The scene loss through a frozen R and/or the SSL loss on the weak rows of a mixed batch."""

    def __init__(
        self,
        refinement: RefinementNet | None,
        ssl_kind: str,
        ssl_head: nn.Module | None,
        augment: BatchAugment | None,
        *,
        temperature: float = 0.5,
        scene_weight: float = 1.0,
        ssl_weight: float = 1.0,
    ) -> None:
        super().__init__()
        self.refinement = refinement
        self.ssl_kind = ssl_kind
        self.ssl_head = ssl_head
        self.augment = augment
        self.temperature = temperature
        self.weights = {"scene": scene_weight, "ssl": ssl_weight}

    @property
    def names(self) -> list[str]:
        """The losses computed (keys of :meth:`forward`'s result)."""
        return [name for name, on in (("scene", self.refinement), ("ssl", self.ssl_head)) if on is not None]

    def train(self, mode: bool = True) -> WeakLosses:
        super().train(mode)
        if self.refinement is not None:
            self.refinement.eval()  # frozen: batch-norm statistics stay those of train_mgm
        return self

    def forward(self, net: MultiTaskNet, features: Tensor, batch: Mapping[str, Any]) -> dict[str, LossSum]:
        """Loss sums over the weak rows (``count`` = weak images; zero when the batch holds none).

        ``features`` are M's encoder features of the whole batch (computed once, with the dense losses).
        """
        weak = ~batch["labelled"]
        count = weak.sum()
        zero = batch["rgb"].new_zeros(())
        sums: dict[str, LossSum] = {}
        if self.refinement is not None:
            total = zero
            if int(count):
                size = (batch["rgb"].shape[-2], batch["rgb"].shape[-1])
                predictions = encoder_only_predictions(net, features[weak], size, self.refinement.tasks)
                logits = self.refinement(predictions).float()
                total = F.cross_entropy(logits, batch["scene"][weak], reduction="sum")
            sums["scene"] = LossSum(total, count)
        if self.ssl_head is not None:
            total, used = zero, torch.zeros_like(count)
            if int(count) >= MIN_SSL_IMAGES:
                assert self.augment is not None
                images = batch["rgb"][weak].float()
                loss = ssl_loss(self.ssl_kind, net, self.ssl_head, images, self.augment, self.temperature)
                total, used = loss.float() * count, count
            sums["ssl"] = LossSum(total, used)
        return sums

    def combine(self, sums: Mapping[str, LossSum]) -> Tensor:
        """The weighted sum of the mean losses, to add to the dense loss."""
        terms = [self.weights[name] * value.mean() for name, value in sums.items()]
        return torch.stack(terms).sum()


def build_weak_losses(
    params: Params,
    net: MultiTaskNet,
    tasks: Sequence[str],
    num_classes: int,
    scene_names: Sequence[str],
    resolution: int,
    device: torch.device,
) -> WeakLosses | None:
    """The weak losses ``mix`` asks for (``None`` when neither the scene nor the SSL loss is on)."""
    mix = params.mix
    refinement = None
    if mix.scene_weight > 0:
        refinement = load_frozen_refinement(mix.refinement, tasks, num_classes, scene_names, device)
    head, augment = None, None
    if mix.ssl != "none" and mix.ssl_weight > 0:
        head = build_ssl_head(mix.ssl, net.feature_channels, resolution, params.ssl.dim, param="mix.ssl")
        assert head is not None
        head = head.to(device)
        augment = BatchAugment(resolution)
    if refinement is None and head is None:
        return None
    return WeakLosses(
        refinement,
        mix.ssl,
        head,
        augment,
        temperature=params.ssl.temperature,
        scene_weight=mix.scene_weight,
        ssl_weight=mix.ssl_weight,
    )
