"""Batch-norm running statistics of M: which passes may update them, and recomputing them.

In the joint MGM loop M's encoder also sees SimCLR views, synthetic images and the guide's passes;
in train mode each of those updates the running statistics that evaluation uses. Three modes
(``mgm.bn_mode``): ``authors`` (every pass updates, as the authors' code does), ``dense`` (only
the dense step's passes update; every other step leaves them as they were), ``recalibrate`` (as
``authors`` during the epoch, then recomputed from clean labelled images before validation).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor, nn

BN_MODES = ("authors", "dense", "recalibrate")


def batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of ``module`` that track running statistics."""
    return [
        layer
        for layer in module.modules()
        if isinstance(layer, nn.modules.batchnorm._BatchNorm) and layer.track_running_stats
    ]


@torch.no_grad()
def recalibrate(model: nn.Module, images: Iterable[Tensor]) -> int:
    """Recompute ``model``'s batch-norm running statistics from ``images`` (batches, already on the
    model's device): reset, then a cumulative average over the batches (``momentum=None``), so the
    result depends on these images only, not on earlier statistics. Returns the images seen.

    The model's mode and each layer's momentum are restored afterwards; no parameter changes.
    """
    layers = batch_norms(model)
    momenta = [layer.momentum for layer in layers]
    training = model.training
    seen = 0
    try:
        for layer in layers:
            layer.reset_running_stats()
            layer.momentum = None
        model.train()
        for batch in images:
            model(batch)
            seen += len(batch)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(training)
    if not seen and layers:
        raise ValueError("recalibrate: no images to compute batch-norm statistics from")
    return seen
