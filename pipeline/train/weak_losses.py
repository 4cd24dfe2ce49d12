"""The MGM losses of a mixed batch beyond the dense ones: ``train_mt``'s ``mgm`` variant (MGM-light).

On the weak (scene-label-only) samples, as steps 5 and 6 of the joint loop:

* ``scene``: cross-entropy of the refinement network R, frozen for this loss (eval mode, no
  gradient to its parameters), applied to M's predictions of the weak images against their scene
  labels. M's decoders are out of the graph too, so it updates M's encoder only.
* ``ssl``: the self-supervised loss of M's encoder (:func:`pipeline.train.ssl.ssl_loss`: SimCLR's
  NT-Xent on two augmented views, or reconstruction) on the weak images; its head trains with M.

With ``mix.real_steps``, also on the labelled samples, as steps 2 and 3:

* ``scene_real``: R's cross-entropy on M's predictions of the real images; it trains R and reaches
  the encoder through the decoders without updating them;
* ``ssl_real``: the same SSL loss on the real images.

R and the SSL head start from the ``train_mgm`` checkpoint ``mix.refinement`` or fresh
(``mix.auxiliary_init``). Labelled samples get the dense losses (weak samples carry ignore-valued
dense targets, so the dense losses skip them).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pipeline.checkpoint import CheckpointError, load_checkpoint, load_state_strict
from pipeline.config import Params
from pipeline.errors import ParamsError
from pipeline.models.multitask import Features, MultiTaskNet, as_feature_maps
from pipeline.models.refinement import RefinementNet, load_refinement
from pipeline.tasks.losses import LossSum
from pipeline.train.mgm_models import build_refinement
from pipeline.train.ssl import BatchAugment, build_ssl_head, build_views, ssl_loss

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
    net: MultiTaskNet, features: Features | Tensor, size: tuple[int, int], tasks: Sequence[str]
) -> dict[str, Tensor]:
    """M's predictions from encoder ``features`` through which a loss reaches the encoder only (step 5).

    The head (decoders, or MTI-Net's / XTasC-Net's head) runs with its parameters out of the graph and
    in eval mode, so its batch-norm statistics neither see nor learn from the weak images; the
    features keep their gradient path.
    """
    with frozen(net.decoders):
        return net.decode(features, size, tasks)


def select_rows(features: Features | Tensor, rows: Tensor) -> dict[int, Tensor]:
    """The rows ``rows`` (a boolean mask over the batch) of every encoder map."""
    return {stride: value[rows] for stride, value in as_feature_maps(features).items()}


@contextmanager
def frozen(module: nn.Module) -> Iterator[None]:
    """``module`` in eval mode with no gradient to its parameters, for the ops recorded inside
    (autograd records at each op whether a parameter requires grad, so later ops may train it)."""
    flags, mode = [param.requires_grad for param in module.parameters()], module.training
    module.requires_grad_(False).eval()
    try:
        yield
    finally:
        module.train(mode)
        for param, flag in zip(module.parameters(), flags):
            param.requires_grad_(flag)


class WeakLosses(nn.Module):
    """The scene loss of R and/or the SSL loss on the weak rows of a mixed batch, and with
    ``real_steps`` both on its labelled rows too (R trains there only)."""

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
        real_steps: bool = False,
    ) -> None:
        super().__init__()
        self.refinement = refinement
        self.ssl_kind = ssl_kind
        self.ssl_head = ssl_head
        self.augment = augment
        self.temperature = temperature
        self.real_steps = real_steps
        self.weights = {
            "scene": scene_weight,
            "ssl": ssl_weight,
            "scene_real": scene_weight,
            "ssl_real": ssl_weight,
        }
        if refinement is not None and not real_steps:
            refinement.requires_grad_(False)

    @property
    def names(self) -> list[str]:
        """The losses computed (keys of :meth:`forward`'s result)."""
        found = [name for name, on in (("scene", self.refinement), ("ssl", self.ssl_head)) if on is not None]
        return found + [f"{name}_real" for name in found] if self.real_steps else found

    @property
    def trains_refinement(self) -> bool:
        """R is trained (on the labelled rows), so its weights and optimizer state are this run's."""
        return self.refinement is not None and self.real_steps

    def train(self, mode: bool = True) -> WeakLosses:
        super().train(mode)
        if self.refinement is not None and not self.real_steps:
            self.refinement.eval()  # frozen: batch-norm statistics stay those of train_mgm
        return self

    def forward(
        self, net: MultiTaskNet, features: Features | Tensor, batch: Mapping[str, Any]
    ) -> dict[str, LossSum]:
        """Loss sums over the weak rows (and, with ``real_steps``, the labelled rows); ``count`` =
        images; zero when the batch holds none.

        ``features`` are M's encoder maps of the whole batch (:meth:`MultiTaskNet.encode`, computed
        once, with the dense losses).
        """
        labelled = batch["labelled"]
        sums: dict[str, LossSum] = {}
        rows = {"": ~labelled, "_real": labelled} if self.real_steps else {"": ~labelled}
        for suffix, picked in rows.items():
            if self.refinement is not None:
                if suffix:  # step 2: R trains, in its own mode
                    sums["scene_real"] = self._scene(net, features, batch, picked)
                else:  # step 5: R frozen
                    with frozen(self.refinement):
                        sums["scene"] = self._scene(net, features, batch, picked)
            if self.ssl_head is not None:
                sums[f"ssl{suffix}"] = self._ssl(net, batch, picked)
        return sums

    def _scene(
        self, net: MultiTaskNet, features: Features | Tensor, batch: Mapping[str, Any], rows: Tensor
    ) -> LossSum:
        assert self.refinement is not None
        count = rows.sum()
        total = batch["rgb"].new_zeros(())
        if int(count):
            size = (batch["rgb"].shape[-2], batch["rgb"].shape[-1])
            predictions = encoder_only_predictions(
                net, select_rows(features, rows), size, self.refinement.tasks
            )
            logits = self.refinement(predictions).float()
            total = F.cross_entropy(logits, batch["scene"][rows], reduction="sum")
        return LossSum(total, count)

    def _ssl(self, net: MultiTaskNet, batch: Mapping[str, Any], rows: Tensor) -> LossSum:
        count = rows.sum()
        total, used = batch["rgb"].new_zeros(()), torch.zeros_like(count)
        if int(count) >= MIN_SSL_IMAGES:
            assert self.augment is not None
            images = batch["rgb"][rows].float()
            loss = ssl_loss(self.ssl_kind, net, self.ssl_head, images, self.augment, self.temperature)
            total, used = loss.float() * count, count
        return LossSum(total, used)

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
    """The losses ``mix`` asks for (``None`` when neither the scene nor the SSL loss is on), with R
    and the SSL head from ``mix.refinement``'s checkpoint or fresh (``mix.auxiliary_init``)."""
    mix = params.mix
    from_checkpoint = mix.auxiliary_init == "checkpoint"
    if not from_checkpoint and not mix.real_steps and mix.scene_weight > 0:
        raise ParamsError(
            "mix.auxiliary_init=fresh with mix.real_steps=false: a fresh R that never trains gives a "
            "meaningless scene loss; set mix.real_steps=true, mix.auxiliary_init=checkpoint or "
            "mix.scene_weight=0"
        )
    refinement = None
    if mix.scene_weight > 0:
        if from_checkpoint:
            refinement = load_frozen_refinement(mix.refinement, tasks, num_classes, scene_names, device)
        else:
            refinement = build_refinement(params, tasks, num_classes, len(scene_names)).to(device)
        if mix.real_steps:
            refinement.requires_grad_(True)
    head, augment = None, None
    if mix.ssl != "none" and mix.ssl_weight > 0:
        head = build_ssl_head(
            mix.ssl, net.feature_channels, resolution, params.ssl.dim,
            hidden=params.ssl.hidden, param="mix.ssl",
        )  # fmt: skip
        assert head is not None
        if from_checkpoint:
            load_ssl_head(head, mix.refinement)
        head = head.to(device)
        augment = build_views(params.ssl, resolution)
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
        real_steps=mix.real_steps,
    )


def load_ssl_head(head: nn.Module, path: str | Path) -> None:
    """The SSL head of the ``train_mgm`` checkpoint at ``path`` into ``head``; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(
            f"mix.refinement: checkpoint {path} does not exist (run `mgm train_mgm`, or set "
            "mix.auxiliary_init=fresh to start R and the SSL head afresh)"
        )
    state = load_checkpoint(path).get("ssl_head")
    if state is None:
        raise CheckpointError(
            f"mix.refinement: {path} holds no SSL head (trained with mgm.ssl=none?); set "
            "mix.auxiliary_init=fresh or mix.ssl=none"
        )
    load_state_strict(head, state, f"mix.refinement {path} (ssl_head: mgm.ssl and mix.ssl must agree)")
